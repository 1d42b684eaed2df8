"""The runs as a person sees them: a stable order and unique, readable labels.

Pure functions over the rows of ``RunManager.list()`` (no streamlit): the app's run
pickers, tables and legends use them, so a new run never changes a page's default
selection and two runs never share a label.
"""
from __future__ import annotations

import json
import math
import time
from collections import Counter
from pathlib import Path

DEMO_PREFIX = "demo-"


def is_demo(run_id: str) -> bool:
    """A shipped demo run (``checkpoints/demo-*``): read-only for students."""
    return run_id.startswith(DEMO_PREFIX)


def order_runs(rows: list[dict]) -> list[dict]:
    """Demo runs first (by name), then the others newest first (creation time, else id).

    The first row is every picker's default, so the default stays on a demo run however
    many runs students add.
    """
    demos = sorted((r for r in rows if is_demo(r["id"])), key=lambda r: r["id"])
    others = sorted((r for r in rows if not is_demo(r["id"])),
                    key=lambda r: (r.get("created") or 0.0, r["id"]), reverse=True)
    return demos + others


def mine_first(rows: list[dict], me: str) -> list[dict]:
    """``order_runs`` with the runs whose ``owner`` is ``me`` in front, newest first: the
    Runs page's order for a student, whose own runs would sit below every demo run."""
    ordered = order_runs(rows)
    return [r for r in ordered if r.get("owner") == me] + [r for r in ordered if r.get("owner") != me]


def dataset_label(name: str) -> str:
    """``npz:/path/to/faces.npz`` -> ``faces (uploaded)``; other names as they are."""
    return f"{Path(name[4:]).stem} (uploaded)" if name.startswith("npz:") else name


def run_label(row: dict) -> str:
    """Variant, latent size, dataset, its owner's name (a student's run), then the demo's name
    or the creation date and time: ``ae z=16 · digits · Ada · 06 Dec 22:06``."""
    if row.get("state") == "damaged":
        return f"{row['id']} (damaged)"
    if is_demo(row["id"]) or not row.get("created"):
        when = row["id"]
    else:
        when = time.strftime("%d %b %H:%M", time.localtime(row["created"]))
    who = f"{row['owner_name']} · " if row.get("owner_name") else ""
    return f"{row['variant']} z={row.get('latent_dim')} · {dataset_label(row['dataset'])} · {who}{when}"


def run_labels(rows: list[dict]) -> dict[str, str]:
    """``{run id: label}`` with every label unique: runs that would share one (same variant,
    size, dataset and minute) get their id's last characters, or the whole id, appended."""
    labels = {r["id"]: run_label(r) for r in rows}
    for tail in (4, None):
        counts = Counter(labels.values())
        labels = {i: (f"{label} · {i[-tail:] if tail else i}" if counts[label] > 1 else label)
                  for i, label in labels.items()}
    return labels


def eta_text(row: dict) -> str:
    """The Runs table's ETA: never empty - a duration, or what the run is waiting for."""
    state = row.get("state")
    if state == "running":
        eta = row.get("eta_seconds")
        if eta is None:
            return "estimating..."
        minutes, seconds = divmod(int(round(eta)), 60)
        return f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"
    if state == "done" and row.get("caches") == "building":
        return "training done"
    return {"queued": "waiting for a worker", "done": "finished"}.get(state, "-")


def phase_of(row: dict) -> tuple[str, float]:
    """(state shown, progress shown): a finished run still building its caches shows the step
    (``evaluating``, ``caching``, ``scoring``) and how far along the steps it is."""
    if row.get("state") == "done" and row.get("caches") == "building" and row.get("phase"):
        return row["phase"], float(row.get("phase_progress") or 0.0)
    return row.get("state", "-"), float(row.get("progress") or 0.0)


def run_warnings(run_dir, row: dict) -> list[str]:
    """What a student should know about a run at a glance, read from its folder (nothing is
    computed): a loss that became NaN or infinite, and a code with no active unit."""
    run_dir, found = Path(run_dir), []
    error = row.get("error") or ""
    if "non-finite" in error or "diverged" in error:
        found.append(f"the loss became NaN or infinite ({error}); try a smaller learning rate")
    else:
        bad = None
        try:
            with open(run_dir / "metrics.jsonl") as lines:
                for line in lines:
                    entry = json.loads(line) if line.strip() else {}
                    if any(isinstance(v, float) and not math.isfinite(v) for v in entry.values()):
                        bad = entry
                        break
        except (OSError, ValueError):
            pass
        if bad is not None:
            found.append(f"a logged loss is NaN or infinite (epoch {bad.get('epoch')}); "
                         "try a smaller learning rate")
    try:
        scores = json.loads((run_dir / "eval.json").read_text())
        scores = scores.get("value", scores)
    except (OSError, ValueError):
        scores = {}
    if scores.get("active_units") == 0:
        found.append("no active latent unit: the code is ignored and every image decodes to "
                     "the same average (posterior collapse); " + " or ".join(collapse_levers(run_dir)))
    return found


def collapse_levers(run_dir: Path) -> list[str]:
    """What the user can change against a collapsed code, asked of the run's variant (its
    config says which weights it has); a generic lever when the config cannot be read."""
    from aelab.models import get_variant

    try:
        raw = json.loads((run_dir / "config.json").read_text())
        levers = get_variant(raw["variant"]).Config.collapse_levers
        return levers(raw["model"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError, LookupError):
        return ["train longer (epochs)"]
