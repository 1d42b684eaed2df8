"""The Ray backend: each run is a Ray task; its folder comes back as the task's result.

The task trains in a temporary folder on whichever machine Ray picks and
returns the run folder's files as bytes; this driver writes them into its own
runs folder (each file atomically, ``status.json`` last), once per run, so
workers need no shared file system. While a task trains it streams its status
and, after each checkpoint, the checkpoint files to a small actor (the inbox);
the driver copies both into the local folder, so progress shows in
``runs list`` and the pages. A worker killed mid-run (``kill -9``, a lost
node) makes Ray retry the task (``max_retries``); the retry starts from the
last checkpoint the inbox holds, or from step 0 when there was none yet.

Workers import aelab: on a local cluster from this checkout; when joining a
cluster (``address``), the package travels with the job (``py_modules``).
Datasets are loaded on the worker: the shipped ones are built in, ``npz:``
paths must exist there.
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from aelab.errors import AelabError
from aelab.runs.folder import FINISHED, TRAIN_STATE, WEIGHTS, atomic_write_bytes, read_status, write_status

MAX_RETRIES = 3
CHECKPOINT_FILES = (TRAIN_STATE, WEIGHTS, "metrics.jsonl")


# --- on the worker ---
def folder_files(run_dir: Path) -> dict[str, bytes]:
    """Every plain file of a run folder (not temporaries), by name."""
    return {p.name: p.read_bytes() for p in sorted(Path(run_dir).iterdir())
            if p.is_file() and not p.name.startswith(".")}


class _Streamer:
    """The trainer's progress callback on a worker: status to the inbox, checkpoints when new."""

    def __init__(self, inbox, run_id: str, run_dir: Path):
        self.inbox, self.run_id, self.run_dir = inbox, run_id, run_dir
        self.sent = None

    def __call__(self, status: dict) -> None:
        self.inbox.report.remote(self.run_id, status)
        state = self.run_dir / TRAIN_STATE
        stamp = state.stat().st_mtime_ns if state.exists() else None
        if stamp != self.sent:
            self.sent = stamp
            files = {n: (self.run_dir / n).read_bytes() for n in CHECKPOINT_FILES
                     if (self.run_dir / n).exists()}
            self.inbox.put_checkpoint.remote(self.run_id, files)


def run_trial(run_id: str, files: dict[str, bytes], resume: bool, inbox) -> dict[str, bytes]:
    """The Ray task: train the run whose folder is ``files`` in a temporary folder; its files.

    A retry after a dead worker takes the newest checkpoint streamed to ``inbox``.
    """
    import ray

    from aelab.runs.local import finish_caches
    from aelab.runs.train import trainer_for

    os.environ.setdefault("AELAB_THREADS", str(max(1, int(ray.get_runtime_context()
                                                           .get_assigned_resources()
                                                           .get("CPU", 1)))))
    streamed = ray.get(inbox.checkpoint.remote(run_id))
    with tempfile.TemporaryDirectory(prefix="aelab-ray-") as tmp:
        run_dir = Path(tmp) / run_id
        run_dir.mkdir()
        for name, data in {**files, **(streamed or {})}.items():
            (run_dir / name).write_bytes(data)
        trainer = trainer_for(run_dir, progress=_Streamer(inbox, run_id, run_dir),
                              should_stop=lambda: False)  # Ray cancels the task instead
        try:
            status = trainer.run(resume=resume or (run_dir / TRAIN_STATE).exists())
        except Exception:
            status = read_status(run_dir)  # the trainer recorded the failure; ship it back
        finish_caches(run_dir, status, trainer.config.caches)
        return folder_files(run_dir)


class Inbox:
    """A Ray actor holding each running trial's latest status and checkpoint."""

    def __init__(self):
        self.status: dict[str, dict] = {}
        self.checkpoints: dict[str, tuple[int, dict]] = {}

    def report(self, run_id: str, status: dict) -> None:
        self.status[run_id] = status

    def put_checkpoint(self, run_id: str, files: dict[str, bytes]) -> None:
        version = self.checkpoints.get(run_id, (0, None))[0] + 1
        self.checkpoints[run_id] = (version, files)

    def checkpoint(self, run_id: str) -> dict[str, bytes] | None:
        return self.checkpoints.get(run_id, (0, None))[1]

    def news(self, seen: dict[str, int]) -> tuple[dict, dict]:
        """Every status, and the checkpoints newer than the versions in ``seen``."""
        fresh = {k: v for k, v in self.checkpoints.items() if v[0] > seen.get(k, 0)}
        return self.status, fresh


# --- on the driver ---
def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail in one sentence at once when nothing listens at HOST:PORT (``ray.init`` would
    keep retrying for minutes)."""
    import socket

    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise AelabError(f"could not connect to the Ray cluster at {address}: {reason}; start "
                         f"one with `ray start --head --port {port}` or check the address") from None


class RayBackend:
    """Runs prepared run folders as Ray tasks and writes their folders back here."""

    name = "ray"

    def __init__(self, runs_dir, address: str | None = None, num_cpus: int | None = None,
                 gpus_per_trial: float = 0.0, poll: float = 0.5):
        import ray

        self.runs_dir = Path(runs_dir).resolve()
        self.poll = poll
        self.owns_cluster = not ray.is_initialized()
        if self.owns_cluster:
            self._connect(ray, address, num_cpus)
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        self.inbox = ray.remote(num_cpus=0)(Inbox).remote()
        self.task = ray.remote(run_trial).options(
            num_cpus=1, num_gpus=gpus_per_trial,
            max_retries=MAX_RETRIES, retry_exceptions=False)
        self.refs: dict[str, tuple[Path, object]] = {}  # run id -> (folder, task ref)
        self.seen: dict[str, int] = {}
        self.last_news = 0.0

    @staticmethod
    def _connect(ray, address: str | None, num_cpus: int | None) -> None:
        import logging

        common = {"include_dashboard": False, "log_to_driver": False,
                  "logging_level": logging.WARNING}
        if address and address != "auto":
            _check_reachable(address)
        try:
            if address:
                import aelab

                ray.init(address=address, **common,
                         runtime_env={"py_modules": [str(Path(aelab.__file__).parent)]})
            else:
                cpus = num_cpus or int(os.environ.get("AELAB_MAX_RUNS") or 2)
                ray.init(num_cpus=cpus, **common)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = f"the Ray cluster at {address}" if address else "a local Ray cluster"
            raise AelabError(f"could not connect to {where}: {str(exc).splitlines()[0]}") from None

    def submit(self, run_dir: Path, resume: bool = False) -> None:
        """Start the run as a Ray task, shipping its folder (and checkpoint) with it."""
        run_dir = Path(run_dir)
        status = read_status(run_dir)
        write_status(run_dir, **{**status, "state": "queued", "backend": "ray", "error": None,
                                 "submitted": time.time()})
        files = folder_files(run_dir)
        ref = self.task.remote(run_dir.name, files, resume, self.inbox)
        self.refs[run_dir.name] = (run_dir, ref)

    def state(self, run_dir: Path) -> dict:
        """The run's status, after taking in whatever Ray has finished or streamed."""
        self._pump()
        status = read_status(Path(run_dir))
        if status["state"] == "running" and Path(run_dir).name not in self.refs:
            return {**status, "state": "interrupted"}  # its driver was another process, now gone
        return status

    def cancel(self, run_dir: Path) -> dict:
        """Cancel the run's task (forcefully: the worker process ends); its status."""
        import ray

        run_dir = Path(run_dir)
        entry = self.refs.pop(run_dir.name, None)
        if entry:
            ray.cancel(entry[1], force=True)
        status = read_status(run_dir)
        if status["state"] in FINISHED:
            return status
        return write_status(run_dir, **{**status, "state": "cancelled"})

    def _pump(self) -> None:
        """Write finished tasks' folders (once each) and streamed progress into the runs folder."""
        import ray

        if time.monotonic() - self.last_news < self.poll or not self.refs:
            return
        self.last_news = time.monotonic()
        refs = {ref: name for name, (_, ref) in self.refs.items()}
        ready, _ = ray.wait(list(refs), num_returns=len(refs), timeout=0)
        for ref in ready:
            run_dir, _ = self.refs.pop(refs[ref])
            self._write_result(run_dir, ref)
        statuses, checkpoints = ray.get(self.inbox.news.remote(self.seen))
        for name, (run_dir, _) in self.refs.items():
            if name in checkpoints:
                version, files = checkpoints[name]
                self.seen[name] = version
                for file, data in files.items():
                    atomic_write_bytes(run_dir / file, data)
            if name in statuses:  # the heartbeat is this driver's: fresh while it watches
                write_status(run_dir, **{**statuses[name], "backend": "ray"})

    def _write_result(self, run_dir: Path, ref) -> None:
        import ray

        try:
            files = ray.get(ref)
        except (ray.exceptions.RayTaskError, ray.exceptions.RayError) as exc:
            status = read_status(run_dir)
            write_status(run_dir, **{**status, "state": "failed", "backend": "ray",
                                     "error": f"the Ray task failed: {str(exc).splitlines()[0]}"})
            return
        status = files.pop("status.json")
        for name, data in files.items():
            atomic_write_bytes(run_dir / name, data)
        atomic_write_bytes(run_dir / "status.json", status)  # last: done means every file is here

    def close(self) -> None:
        """Stop watching; shut down the local cluster if this backend started it."""
        import ray

        if self.owns_cluster and ray.is_initialized():
            ray.shutdown()
