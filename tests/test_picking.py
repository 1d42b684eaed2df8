"""Which run each page opens on, and how label classes are named: pure checks, no page run
(tests/test_shipped_pages.py opens the pages on the shipped runs)."""
from __future__ import annotations

from pathlib import Path

from aelab.data.datasets import class_name
from aelab.data.shapes import SHAPES
from aelab.explore.lesson import STEPS
from aelab.ui.picking import PREFERRED, preferred

CHECKPOINTS = Path(__file__).resolve().parents[1] / "checkpoints"
# the picker (widget key) on each page the Lesson links to
PICKER = {"pages/inside.py": "in_run", "pages/traversal.py": "trav_run", "pages/generate.py": "gen_run",
          "pages/reconstructions.py": "rec_runs", "pages/disentangle.py": "dis_run"}


def test_every_preferred_run_ships():
    for key, runs in PREFERRED.items():
        for run in runs:
            assert (CHECKPOINTS / run / "config.json").is_file(), f"{key}: {run} is not a shipped run"


def test_each_page_the_lesson_links_to_prefers_the_lessons_run():
    """A Lesson screen's first run is among the runs its page prefers, and the page's first
    preference is a run some Lesson screen of that page uses."""
    for step in STEPS:
        assert step.runs[0] in PREFERRED[PICKER[step.page]], (step.key, step.page)
    for page, key in PICKER.items():
        used = {run for step in STEPS if step.page == page for run in step.runs}
        assert PREFERRED[key][0] in used, page


def test_preferred_keeps_the_tables_order_and_skips_missing_runs():
    rows = [{"id": "demo-ae-z16"}, {"id": "mine"}, {"id": "demo-denoising"}]
    assert [r["id"] for r in preferred(rows, "rec_runs")] == ["demo-ae-z16", "demo-denoising"]
    assert preferred(rows[1:2], "rec_runs") == [] and preferred(rows, "no such picker") == []


def test_sprite_classes_are_named_by_shape_and_digits_by_number():
    assert SHAPES == ("square", "ellipse", "heart")  # the shapes datasets' label order
    for name in ("shapes", "shapes32", "shapes64"):
        assert [class_name(name, c) for c in range(3)] == ["square", "ellipse", "heart"]
    assert [class_name("digits", c) for c in (0, 7)] == ["0", "7"]
    assert class_name("npz:/tmp/faces.npz", 4) == "4"
