"""The Ray backend: each run is a Ray task that streams its progress to the driver.

A trial is a Ray generator task. It trains in a temporary folder on whichever
node Ray picks and yields, as it goes, its status after each log, the
checkpoint files after each checkpoint, and at the end the run folder's files.
This driver writes them into its own runs folder (each file atomically,
``status.json`` last), so workers need no shared file system and progress
shows in ``runs list`` and the pages.

Only the driver holds a trial's state: there is no actor, and nothing the
driver needs stays on the cluster once read. A worker or node lost mid-trial
(``kill -9``, a machine gone) ends that trial's stream with a Ray system error;
the trial is marked ``interrupted`` with the progress of its last checkpoint,
and the study resubmits it with the driver's copy of that checkpoint (from
step 0 when none was made yet). Ctrl-C of the driver cancels every task and
leaves the unfinished trials ``interrupted``; the same command resumes them.
A stop request (the ``cancel`` marker that the pages and ``runs cancel`` put
in a run folder) is carried out by the driver, which cancels the task. Every
status the driver writes names it (host, pid), so once it is gone (even by
``kill -9``, which also ends its tasks on the cluster) ``runs list``, the pages
and the same command run again see its trials ``interrupted`` at once.

Workers import aelab: on a local cluster from this checkout; when joining a
cluster (``address``), the package travels with the job (``py_modules``).
Datasets are loaded on the worker: the shipped ones are built in, ``npz:``
paths must exist there.
"""
from __future__ import annotations

import json
import os
import socket
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from aelab.errors import AelabError
from aelab.runs.folder import (
    FINISHED,
    TRAIN_STATE,
    WEIGHTS,
    atomic_write_bytes,
    read_config,
    read_status,
    stop_file,
    write_status,
)

CHECKPOINT_FILES = (TRAIN_STATE, WEIGHTS, "metrics.jsonl")
BEAT_SECONDS = 5.0  # the driver refreshes the heartbeat of each trial it watches this often
DRAIN_SECONDS = 0.5  # the longest a driver takes in one trial's reports before looking at the rest
GONE_SECONDS = 20.0  # how long a stop waits for the cancelled tasks to end on the cluster


# --- on the worker ---
def folder_files(run_dir: Path) -> dict[str, bytes]:
    """Every plain file of a run folder (not temporaries, not a stop request), by name."""
    return {p.name: p.read_bytes() for p in sorted(Path(run_dir).iterdir())
            if p.is_file() and not p.name.startswith(".") and p != stop_file(run_dir)}


class _Streamer:
    """The trainer's progress callback on a worker: each status, and the checkpoint when new.

    The trainer saves a checkpoint right after the log it reports, so a new checkpoint
    is seen at the next report and belongs to the status reported before it.
    """

    def __init__(self, put, run_dir: Path, node: str):
        self.put, self.run_dir, self.node = put, run_dir, node
        self.sent = self._stamp()  # a resumed trial's checkpoint is the driver's already
        self.previous = None

    def _stamp(self):
        state = self.run_dir / TRAIN_STATE
        return state.stat().st_mtime_ns if state.exists() else None

    def __call__(self, status: dict) -> None:
        status = {**status, "node": self.node}
        stamp = self._stamp()
        if stamp != self.sent:
            self.sent = stamp
            files = {n: (self.run_dir / n).read_bytes() for n in CHECKPOINT_FILES
                     if (self.run_dir / n).exists()}
            self.put(("checkpoint", status, files, self.previous or status))
        else:
            self.put(("status", status))
        self.previous = status


def gpu_refusal(gpus: float, device: str, node: str) -> str | None:
    """Why the trial cannot run with the ``gpus`` GPUs Ray gave it: a GPU it cannot use here
    (PyTorch sees no CUDA device, or the run asks for the CPU), or none for a run that asks
    for CUDA; None when it can."""
    if not gpus:
        if device.startswith("cuda"):
            return (f"the trial asks for device {device} but Ray gave it no GPU; add "
                    f"--gpus-per-trial 1 (or set device=auto)")
        return None
    import torch

    if device in ("cpu", "mps"):
        return (f"the trial was given {gpus:g} GPU(s) but its device setting is {device}; "
                f"leave --gpus-per-trial out or set device=auto or cuda")
    if not torch.cuda.is_available():
        return (f"Ray gave the trial {gpus:g} GPU(s) on {node}, but PyTorch there sees no CUDA "
                f"device; install a CUDA build of torch on that node or leave --gpus-per-trial out")
    return None


TRIAL_FOLDER_PREFIX = "aelab-trial-"
TRIAL_OWNER = "owner.pid"  # the worker process that trains in the folder


def remove_abandoned_trial_folders(root: str | None = None) -> list[Path]:
    """Remove the temporary folders of trials whose worker is gone (``kill -9``, a lost
    node's restart), on this node; a finished or failed trial removes its own. Only folders
    a trial made (its prefix and its ``owner.pid``) naming a process that no longer exists
    are touched. Returns what was removed."""
    import shutil

    removed = []
    for folder in Path(root or tempfile.gettempdir()).glob(TRIAL_FOLDER_PREFIX + "*"):
        try:
            pid = int((folder / TRIAL_OWNER).read_text())
            os.kill(pid, 0)
        except ProcessLookupError:  # its worker is gone
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
        except (OSError, ValueError):  # not ours, being written, or another user's process
            continue
    return removed


def run_trial(run_id: str, files: dict[str, bytes], resume: bool):
    """The Ray task: train the run whose folder is ``files`` in a temporary folder, yielding
    ``("status", status)``, ``("checkpoint", status, files, status_at_checkpoint)`` and last
    ``("result", files)``. The trainer runs in a thread so this generator can yield its reports."""
    import queue
    import threading

    import ray

    from aelab.runs.local import finish_caches
    from aelab.runs.train import trainer_for

    context = ray.get_runtime_context()
    if not context.get_assigned_resources().get("GPU", 0):
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # device auto: no GPU that Ray gave another task
    os.environ.setdefault("AELAB_THREADS", str(max(1, int(context.get_assigned_resources()
                                                           .get("CPU", 1)))))
    node = f"{ray.util.get_node_ip_address()} (Ray node {context.get_node_id()[:8]})"
    reports: queue.Queue = queue.Queue()
    remove_abandoned_trial_folders()
    with tempfile.TemporaryDirectory(prefix=TRIAL_FOLDER_PREFIX) as tmp:
        (Path(tmp) / TRIAL_OWNER).write_text(str(os.getpid()))
        run_dir = Path(tmp) / run_id
        run_dir.mkdir()
        for name, data in files.items():
            (run_dir / name).write_bytes(data)

        def train():
            try:
                refusal = gpu_refusal(context.get_assigned_resources().get("GPU", 0),
                                      read_config(run_dir)["train_config"].device, node)
                if refusal:  # a trial given a GPU never trains on the CPU unnoticed
                    write_status(run_dir, **{**read_status(run_dir), "state": "failed",
                                             "error": refusal, "node": node})
                    reports.put(("result", folder_files(run_dir)))
                    return
                trainer = trainer_for(run_dir, progress=_Streamer(reports.put, run_dir, node),
                                      should_stop=lambda: False)  # the driver cancels the task
                try:
                    status = trainer.run(resume=resume or (run_dir / TRAIN_STATE).exists())
                except Exception:
                    status = read_status(run_dir)  # the trainer recorded the failure
                status = finish_caches(run_dir, status, trainer.config.caches)
                write_status(run_dir, **{**status, "node": node})
                reports.put(("result", folder_files(run_dir)))
            except BaseException as exc:  # e.g. a damaged config: the task fails with it
                reports.put(("error", exc))

        threading.Thread(target=train, name=f"aelab-{run_id}", daemon=True).start()
        while True:
            report = reports.get()
            if report[0] == "error":
                raise report[1]
            yield report
            if report[0] == "result":
                return


# --- on the driver ---
def check_reachable(address: str, timeout: float = 5.0) -> None:
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


@dataclass
class _Trial:
    """A trial this driver watches: its folder, its stream and what it last knew of it."""

    run_dir: Path
    stream: object  # the task's ray.ObjectRefGenerator
    base: dict  # the status to fall back to if the trial is lost: its last checkpoint's
    written: float = field(default_factory=time.monotonic)


class RayBackend:
    """Runs prepared run folders as Ray tasks and writes their folders back here."""

    name = "ray"

    def __init__(self, runs_dir, address: str | None = None, num_cpus: int | None = None,
                 gpus_per_trial: float = 0.0, poll: float = 0.5):
        import ray

        if gpus_per_trial < 0:
            raise AelabError(f"--gpus-per-trial must be 0 or more, got {gpus_per_trial:g}")
        self.runs_dir = Path(runs_dir).resolve()
        self.poll = poll
        self.owns_cluster = not ray.is_initialized()
        if self.owns_cluster:
            self._connect(ray, address, num_cpus)
        gpus = ray.cluster_resources().get("GPU", 0)
        if gpus_per_trial > gpus:
            self.close()
            where = f"the Ray cluster at {address}" if address else "the local Ray cluster"
            raise AelabError(f"--gpus-per-trial {gpus_per_trial:g} asks for more GPUs than "
                             f"{where} has ({gpus:g}); leave it out to train on CPUs")
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        self.task = ray.remote(run_trial).options(
            num_cpus=1, num_gpus=gpus_per_trial, max_retries=0,  # the study retries, from here
            num_returns="streaming")
        self.trials: dict[str, _Trial] = {}
        self.last_news = 0.0
        # in every status this driver writes: a rerun on this machine sees at once that it ended
        self.mark = {"backend": "ray", "driver": {"host": socket.gethostname(), "pid": os.getpid()}}

    @staticmethod
    def _connect(ray, address: str | None, num_cpus: int | None) -> None:
        import logging

        common = {"include_dashboard": False, "log_to_driver": False,
                  "logging_level": logging.WARNING}
        if address and address != "auto":
            check_reachable(address)
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
        """Start the run as a Ray task, shipping this folder's files (and checkpoint) with it."""
        run_dir = Path(run_dir)
        status = read_status(run_dir)
        base = write_status(run_dir, **{**status, "state": "queued", **self.mark,
                                        "submitted": time.time()})
        stream = self.task.remote(run_dir.name, folder_files(run_dir), resume)
        self.trials[run_dir.name] = _Trial(run_dir, stream, base)

    def state(self, run_dir: Path) -> dict:
        """The run's status, after taking in whatever its task streamed."""
        self._collect_progress()
        run_dir = Path(run_dir)
        status = read_status(run_dir)
        if status["state"] in ("queued", "running") and run_dir.name not in self.trials \
                and status.get("backend") == "ray":
            from aelab.runs.local import refresh_status

            return refresh_status(run_dir, status)  # its driver, another sweep: interrupted if gone
        return status

    def cancel(self, run_dir: Path) -> dict:
        """Cancel the run's task (forcefully: the worker process ends); its status."""
        import ray

        run_dir = Path(run_dir)
        trial = self.trials.pop(run_dir.name, None)
        if trial:
            self._take_in(run_dir.name, trial)  # what it streamed up to now
            ray.cancel(trial.stream, force=True)
        stop_file(run_dir).unlink(missing_ok=True)
        status = read_status(run_dir)
        if status["state"] in FINISHED:
            return status
        base = trial.base if trial else status
        return write_status(run_dir, **{**base, "state": "cancelled",
                                        "error": "cancelled; resume continues from the last "
                                                 "checkpoint"})

    def interrupt(self, reason: str) -> list[Path]:
        """Cancel every task and mark its trial ``interrupted`` (resumable) with ``reason``;
        return once the tasks have ended on the cluster. The trials interrupted."""
        import ray

        self._collect_progress(force=True)  # keep the newest checkpoints
        trials, self.trials = self.trials, {}
        for trial in trials.values():
            ray.cancel(trial.stream, force=True)
        for trial in trials.values():
            write_status(trial.run_dir, **{**trial.base, "state": "interrupted", "error": reason})
        deadline = time.monotonic() + GONE_SECONDS
        for trial in trials.values():  # a stream ends once its worker has gone
            while time.monotonic() < deadline:
                if self._ended(ray, trial.stream):
                    break
                time.sleep(0.05)
        return [t.run_dir for t in trials.values()]

    @staticmethod
    def _ended(ray, stream) -> bool:
        ready, _ = ray.wait([stream], timeout=0)
        if not ready:
            return False
        try:
            ray.get(next(stream))
        except StopIteration:
            return True
        except ray.exceptions.RayError:
            return True
        return False

    def _collect_progress(self, force: bool = False) -> None:
        """Take in what every watched task streamed; carry out stop requests; keep heartbeats."""
        now = time.monotonic()
        if not self.trials or (not force and now - self.last_news < self.poll):
            return
        self.last_news = now
        for name, trial in list(self.trials.items()):
            if stop_file(trial.run_dir).exists():
                self.cancel(trial.run_dir)
                continue
            self._take_in(name, trial)
            if name in self.trials and now - trial.written > BEAT_SECONDS:
                status = read_status(trial.run_dir)  # watched: fresh while this driver lives
                if status["state"] in ("queued", "running"):
                    write_status(trial.run_dir, **status)
                trial.written = now

    def _take_in(self, name: str, trial: _Trial) -> None:
        """Write what the trial's stream has ready into its folder: its newest checkpoint and
        newest status (older ones are superseded, so a driver behind a fast trial catches up in
        a few writes), or its result. Drains for at most ``DRAIN_SECONDS`` so the other trials
        and stop requests are seen too."""
        import ray

        checkpoint = status = None
        deadline = time.monotonic() + DRAIN_SECONDS
        while time.monotonic() < deadline:
            ready, _ = ray.wait([trial.stream], timeout=0)
            if not ready:
                break
            try:
                kind, *rest = ray.get(next(trial.stream))
            except StopIteration:
                self._keep(trial, checkpoint, None)
                return self._lost(name, trial, "its Ray task ended without a result")
            except ray.exceptions.RayTaskError as exc:  # the task's own code failed
                self._keep(trial, checkpoint, None)
                self.trials.pop(name, None)
                write_status(trial.run_dir, **{**trial.base, "state": "failed",
                                               "error": f"the Ray task failed: {_first_line(exc)}"})
                return
            except ray.exceptions.RayError as exc:  # its worker or node was lost
                self._keep(trial, checkpoint, None)  # the last checkpoint it sent counts
                return self._lost(name, trial, _first_line(exc))
            trial.written = time.monotonic()
            if kind == "status":
                status = rest[0]
            elif kind == "checkpoint":
                checkpoint, status = rest, rest[0]
            else:  # the result: every file, status.json last (done means every file is here)
                self.trials.pop(name, None)
                files = rest[0]
                done = json.loads(files.pop("status.json"))
                for file, data in files.items():
                    atomic_write_bytes(trial.run_dir / file, data)
                write_status(trial.run_dir, **{**done, **self.mark})
                return
        self._keep(trial, checkpoint, status)

    def _keep(self, trial: _Trial, checkpoint: list | None, status: dict | None) -> None:
        """Write the newest checkpoint a trial streamed (its files; the status it belongs to
        becomes the trial's base) and its newest status."""
        if checkpoint:
            _, files, at_checkpoint = checkpoint
            for file, data in files.items():
                atomic_write_bytes(trial.run_dir / file, data)
            trial.base = {**at_checkpoint, **self.mark}
        if status:
            write_status(trial.run_dir, **{**status, **self.mark})

    def _lost(self, name: str, trial: _Trial, why: str) -> None:
        """The trial's worker is gone: ``interrupted`` at its last checkpoint, for the study to
        resubmit with this driver's copy of it."""
        self.trials.pop(name, None)
        step = trial.base.get("step", 0)
        write_status(trial.run_dir, **{**trial.base, "state": "interrupted", "error": (
            f"its Ray worker was lost ({why}); resume continues from the checkpoint of step {step}"
            if step else f"its Ray worker was lost ({why}) before its first checkpoint; resume "
                         f"starts it again")})

    def close(self) -> None:
        """Stop watching; shut down the local cluster if this backend started it."""
        import ray

        if self.owns_cluster and ray.is_initialized():
            ray.shutdown()


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
