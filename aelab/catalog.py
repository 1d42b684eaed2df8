"""The runs as a person sees them: a stable order and unique, readable labels.

Pure functions over the rows of ``RunManager.list()`` (no streamlit): the app's run
pickers, tables and legends use them, so a new run never changes a page's default
selection and two runs never share a label.
"""
from __future__ import annotations

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


def dataset_label(name: str) -> str:
    """``npz:/path/to/faces.npz`` -> ``faces (uploaded)``; other names as they are."""
    return f"{Path(name[4:]).stem} (uploaded)" if name.startswith("npz:") else name


def run_label(row: dict) -> str:
    """Variant, latent size, dataset, then the demo's name or the creation date and time."""
    if row.get("state") == "damaged":
        return f"{row['id']} (damaged)"
    if is_demo(row["id"]) or not row.get("created"):
        when = row["id"]
    else:
        when = time.strftime("%d %b %H:%M", time.localtime(row["created"]))
    return f"{row['variant']} z={row.get('latent_dim')} · {dataset_label(row['dataset'])} · {when}"


def run_labels(rows: list[dict]) -> dict[str, str]:
    """``{run id: label}`` with every label unique: runs that would share one (same variant,
    size, dataset and minute) get their id's last characters, or the whole id, appended."""
    labels = {r["id"]: run_label(r) for r in rows}
    for tail in (4, None):
        counts = Counter(labels.values())
        labels = {i: (f"{label} · {i[-tail:] if tail else i}" if counts[label] > 1 else label)
                  for i, label in labels.items()}
    return labels
