"""The app's runs folder: its manager, its runs in order and handles to them."""
from __future__ import annotations

import os
from pathlib import Path

from aelab.runs.folder import runs_root
from aelab.runs.labels import order_runs
from aelab.runs.local import RunManager
from aelab.runs.refs import RunRef


def runs_dir() -> Path:
    """The runs folder the app works on (``$AELAB_RUNS`` or ./checkpoints)."""
    return runs_root().resolve()


def manager() -> RunManager:
    """The run manager of the app's runs folder."""
    return RunManager(runs_dir())


def list_runs() -> list[dict]:
    """Every run of the runs folder, demo runs first, then newest first (``order_runs``)."""
    return order_runs(manager().list())


def run_ref(run: "dict | str | os.PathLike | RunRef") -> RunRef:
    """The handle of a run the page names (a row of ``manager().list()``, a run id from a
    selection or the query string, or a folder), confined to the app's runs folder."""
    if isinstance(run, dict):
        run = run["id"]
    return RunRef.checked(run, runs_dir())


def finished_runs(rows: list[dict]) -> list[dict]:
    return [r for r in rows if r.get("state") == "done"]
