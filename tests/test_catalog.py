"""Run order and labels (aelab.catalog) and the run picker's URL state (?run=<id>)."""
from __future__ import annotations

import time

from streamlit.testing.v1 import AppTest

from aelab.catalog import order_runs, run_label, run_labels

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
