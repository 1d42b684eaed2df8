"""Run order and labels (aelab.runs.labels) and the run picker's URL state (?run=<id>)."""
from __future__ import annotations

import time

import pytest

from aelab.models import get_variant, list_variants
from aelab.runs.labels import order_runs, run_label, run_labels

T0 = time.mktime((2026, 12, 1, 14, 3, 0, 0, 0, -1))


def row(run_id, variant="vae", dataset="mnist5k", latent=8, created=None, state="done"):
    return {"id": run_id, "variant": variant, "dataset": dataset, "latent_dim": latent,
            "created": created, "state": state}


def test_demo_runs_come_first_then_the_newest():
    rows = [row("20261201-100000-vae-a"), row("demo-vae"), row("demo-ae-z2", "ae"),
            row("x-old", created=T0 - 60), row("x-new", created=T0 + 60), row("x-mid", created=T0)]
    assert [r["id"] for r in order_runs(rows)] == \
        ["demo-ae-z2", "demo-vae", "x-new", "x-mid", "x-old", "20261201-100000-vae-a"]
    # a newly trained run never displaces a demo run as the first (default) choice
    assert order_runs(rows + [row("x-newest", created=T0 + 600)])[0]["id"] == "demo-ae-z2"


def test_labels_are_readable_and_unique():
    assert run_label(row("demo-vae")) == "vae z=8 · mnist5k · demo-vae"
    assert run_label(row("r1", created=T0)) == "vae z=8 · mnist5k · 01 Dec 14:03"
    assert run_label(row("r1", dataset="npz:/tmp/up/faces.npz", created=T0)) == \
        "vae z=8 · faces (uploaded) · 01 Dec 14:03"
    assert run_label({"id": "bad", "state": "damaged"}) == "bad (damaged)"
    # same variant, size, dataset and minute: the id's tail, then the whole id, tells them apart
    rows = [row("20261201-140300-vae-mnist5k-3f2a", created=T0),
            row("20261201-140310-vae-mnist5k-9b1c", created=T0 + 10),
            row("a-3f2a", created=T0 + 20), row("demo-vae")]
    labels = run_labels(rows)
    assert len(set(labels.values())) == len(rows)
    assert labels["20261201-140310-vae-mnist5k-9b1c"] == "vae z=8 · mnist5k · 01 Dec 14:03 · 9b1c"
    assert labels["a-3f2a"] == "vae z=8 · mnist5k · 01 Dec 14:03 · 3f2a · a-3f2a"
    assert labels["demo-vae"] == "vae z=8 · mnist5k · demo-vae"


def test_eta_is_never_empty_and_phases_after_training_show():
    from aelab.runs.labels import eta_text, phase_of

    assert eta_text({"state": "running", "eta_seconds": None}) == "estimating..."
    assert eta_text({"state": "running", "eta_seconds": 83.4}) == "1 min 23 s"
    assert eta_text({"state": "running", "eta_seconds": 7}) == "7 s"
    assert eta_text({"state": "queued"}) == "waiting for a worker"
    assert eta_text({"state": "done"}) == "finished"
    assert eta_text({"state": "cancelled"}) == "-"
    building = {"state": "done", "progress": 1.0, "caches": "building", "phase": "caching",
                "phase_progress": 1 / 3}
    assert phase_of(building) == ("caching", pytest.approx(1 / 3))
    assert eta_text(building) == "training done"
    assert phase_of({"state": "done", "progress": 1.0, "caches": "ready"}) == ("done", 1.0)


def test_warnings_for_nan_losses_and_collapsed_codes(tmp_path):
    import json as _json

    from aelab.runs.labels import run_warnings

    assert run_warnings(tmp_path, {"state": "done"}) == []
    (tmp_path / "metrics.jsonl").write_text('{"epoch": 1.0, "loss": 3.5}\n{"epoch": 2.0, "loss": NaN}\n')
    (tmp_path / "eval.json").write_text(_json.dumps({"value": {"active_units": 0}}))
    nan, collapsed = run_warnings(tmp_path, {"state": "done"})
    assert nan.startswith("a logged loss is NaN or infinite (epoch 2.0)")
    assert collapsed.startswith("no active latent unit")
    diverged = {"state": "failed", "error": "training diverged: loss term 'kl' became non-finite at step 9"}
    assert run_warnings(tmp_path, diverged)[0].startswith("the loss became NaN or infinite (training diverged")


def test_the_worker_writes_each_phase_after_training_to_the_status(tmp_path, monkeypatch):
    import aelab.metrics.results
    from aelab.runs.folder import read_status, write_status
    from aelab.runs.local import finish_caches

    seen = []

    def rebuild_caches(run_dir, progress=None, phase=None):
        for index, name in enumerate(("evaluating", "caching")):
            phase(name, index, 2)
            progress(f"step of {name}")
            status = read_status(run_dir)
            seen.append((status["caches"], status["phase"], status["phase_progress"], status["phase_note"]))

    monkeypatch.setattr(aelab.metrics.results, "rebuild_caches", rebuild_caches)
    done = write_status(tmp_path, state="done", progress=1.0)
    final = finish_caches(tmp_path, done, caches=True)
    assert seen == [("building", "evaluating", 0.0, "step of evaluating"),
                    ("building", "caching", 0.5, "step of caching")]
    assert final["caches"] == "ready" and "phase" not in read_status(tmp_path)


@pytest.mark.parametrize("variant", [v for v in list_variants() if get_variant(v).kl_per_dim])
def test_a_collapse_warning_names_what_this_variant_can_change(tmp_path, variant):
    """Each VAE-family variant's collapse warning names its own settings, with their values,
    and every setting it names is one the user can set on that variant (or the epochs)."""
    import dataclasses
    import json as _json
    import re

    from aelab.runs.labels import run_warnings

    fields = {f.name: f.default for f in dataclasses.fields(get_variant(variant).Config)}
    saved = {name: value for name, value in fields.items() if isinstance(value, (int, float))}
    (tmp_path / "config.json").write_text(_json.dumps({"variant": variant, "model": saved}))
    (tmp_path / "eval.json").write_text(_json.dumps({"value": {"active_units": 0}}))
    (warning,) = run_warnings(tmp_path, {"state": "done"})
    levers = warning.split("(posterior collapse); ")[1].split(" or ")
    named = [re.match(r"(?:lower|raise|train longer) \(?(\w+)", lever).group(1) for lever in levers]
    assert set(named) <= set(fields) | {"epochs"}, warning
    assert "free_bits" in named and "epochs" in named, warning
    for name in get_variant(variant).Config.closing_weights:  # beta for beta-VAE, ...
        assert f"lower {name} (now {saved[name]:g})" in warning
