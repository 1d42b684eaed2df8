"""Background runs: a queue of run folders, one worker process per run, and a
small supervisor process that starts queued runs as slots free.

Nothing here runs in the caller's process or threads: ``submit`` writes a
``queued`` run folder and makes sure a supervisor is alive; the supervisor
(``python -m aelab supervise``, one per runs folder, guarded by an exclusive
``flock``) starts each run as ``python -m aelab worker RUN_DIR`` - a fresh
interpreter, the spawn start method, so CUDA initialises cleanly - and reaps it.
A worker writes ``status.json`` with its pid and a heartbeat every
``HEARTBEAT_SECONDS``; a run whose worker is gone without a final state is
marked ``interrupted`` by whoever looks first.
"""
from __future__ import annotations

import fcntl
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from aelab.errors import AelabError, RunError
from aelab.runs.folder import (
    FINISHED,
    WORKER_LOG,
    delete_run_files,
    loss_rows,
    read_config,
    read_metrics,
    read_status,
    runs_root,
    stop_file,
    write_status,
)
from aelab.runs.refs import RunRef

HEARTBEAT_SECONDS = 2.0
HEARTBEAT_STALE = 30.0  # a live pid whose heartbeat is this old and that is not our worker: gone
LOCK = ".supervisor.lock"
IDLE_EXIT_SECONDS = 5.0


def default_max_parallel() -> int:
    """Runs at a time: ``$AELAB_MAX_RUNS``, else one per CUDA GPU, else one."""
    if os.environ.get("AELAB_MAX_RUNS"):
        return max(1, int(os.environ["AELAB_MAX_RUNS"]))
    import torch

    return max(1, torch.cuda.device_count())


# --- processes ---
def pid_alive(pid) -> bool:
    """True if process ``pid`` exists and is not a zombie."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True  # no /proc (macOS): kill(0) is all we can know


def _is_worker_of(pid: int, run_dir: Path) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return True
    return "aelab" in cmdline and run_dir.name in cmdline


def driver_gone(status: dict) -> bool:
    """True when the driver of a run of another backend (a Ray sweep) is gone: its heartbeat
    is stale, or the driver, a process of this machine (``status["driver"]``), has ended."""
    if time.time() - float(status.get("heartbeat") or 0) > HEARTBEAT_STALE:
        return True
    driver = status.get("driver") or {}
    return driver.get("host") == socket.gethostname() and not pid_alive(driver.get("pid"))


def driven_elsewhere(status: dict) -> bool:
    """True for a run of another backend (a Ray sweep's trial) whose driver is alive: it keeps
    the run's heartbeat fresh and carries out its stop requests."""
    return status.get("backend", "local") != "local" and not driver_gone(status)


def refresh_status(run_dir: Path, status: dict | None = None) -> dict:
    """The run's status, after marking it ``interrupted`` if its worker is gone."""
    run_dir = Path(run_dir)
    status = status or read_status(run_dir)
    elsewhere = status.get("backend", "local") != "local"
    if status["state"] != "running" and not (elsewhere and status["state"] == "queued"):
        return status
    pid = status.get("pid")
    if elsewhere:  # its driver (e.g. a Ray sweep) keeps the heartbeat, queued or running
        gone = driver_gone(status)
        why = (f"the {status['backend']} sweep driving it ended; run the same sweep again to "
               f"resume from the last checkpoint")
    else:
        stale = time.time() - float(status.get("heartbeat") or 0) > HEARTBEAT_STALE
        gone = not pid_alive(pid) or (stale and not _is_worker_of(pid, run_dir))
        why = f"the worker process (pid {pid}) ended without a final state; resume continues " \
              f"from the last checkpoint"
    if not gone:
        return status
    status = read_status(run_dir)  # the worker may have written its final state as it exited
    if status["state"] not in ("running", "queued"):
        return status
    return write_status(run_dir, **{**status, "state": "interrupted", "error": why})


# --- the supervisor ---
class _Lock:
    """The exclusive lock that makes a supervisor the only one of its runs folder."""

    def __init__(self, runs_dir: Path):
        self.path = Path(runs_dir) / LOCK
        self.handle = None

    def acquire(self) -> bool:
        handle = open(self.path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self.handle = handle
        return True

    def release(self) -> None:
        if self.handle:
            fcntl.flock(self.handle, fcntl.LOCK_UN)
            self.handle.close()
            self.handle = None


def supervisor_running(runs_dir) -> bool:
    """True if a supervisor holds the runs folder's lock."""
    lock = _Lock(runs_dir)
    if lock.acquire():
        lock.release()
        return False
    return True


def ensure_supervisor(runs_dir, max_parallel: int | None = None) -> None:
    """Start a detached supervisor for ``runs_dir`` unless one is alive (safe to call twice).

    The caller takes the lock itself and hands the locked descriptor to the new
    supervisor, so a second call made while the first supervisor is still
    starting sees the lock held and starts no duplicate.
    """
    runs_dir = Path(runs_dir).resolve()
    runs_dir.mkdir(parents=True, exist_ok=True)
    lock = _Lock(runs_dir)
    if not lock.acquire():
        return
    fd = lock.handle.fileno()
    command = [sys.executable, "-m", "aelab", "supervise", "--runs-dir", str(runs_dir),
               "--max-parallel", str(max_parallel or default_max_parallel()), "--lock-fd", str(fd)]
    try:
        # sh backgrounds the supervisor and exits at once, so it is re-parented to init and
        # never lingers as a zombie of the caller (a Streamlit server, a CLI, a test).
        subprocess.run(["/bin/sh", "-c", '"$@" >>"$0" 2>&1 </dev/null &',
                        str(runs_dir / ".supervisor.log"), *command], check=True, pass_fds=(fd,))
    finally:
        lock.handle.close()  # closing our copy keeps the lock: the supervisor holds the same file


def _queued_runs(runs_dir: Path) -> list[tuple[Path, dict]]:
    """Queued local runs in submission order; damaged folders and other backends' runs are skipped."""
    rows = []
    for run_dir in _run_dirs(runs_dir):
        try:
            status = read_status(run_dir)
            if status["state"] == "queued" and status.get("backend", "local") == "local":
                rows.append((float(status.get("submitted") or 0), run_dir.name, run_dir, status))
        except RunError:
            continue
    return [(run_dir, status) for _, _, run_dir, status in sorted(rows)]


def _live_runs(runs_dir: Path) -> set[str]:
    live = set()
    for run_dir in _run_dirs(runs_dir):
        try:
            if refresh_status(run_dir)["state"] == "running":
                live.add(run_dir.name)
        except RunError:
            continue
    return live


def _start_worker(run_dir: Path, status: dict) -> subprocess.Popen:
    command = [sys.executable, "-m", "aelab", "worker", "--runs-dir", str(run_dir.parent),
               run_dir.name]
    if status.get("resume"):
        command.append("--resume")
    with open(run_dir / WORKER_LOG, "ab") as log:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    write_status(run_dir, **{**status, "state": "running", "pid": process.pid, "error": None})
    return process


def _worker_exited(run_dir: Path, process: subprocess.Popen) -> None:
    """Record a worker that exited without writing a final state."""
    try:
        status = read_status(run_dir)
    except RunError:
        return
    if status["state"] != "running" or status.get("pid") != process.pid:
        return  # it wrote its final state, or the run was resumed by a newer worker
    code = process.returncode
    if code < 0:
        state, error = "interrupted", f"the worker was killed by signal {-code}; resume continues " \
                                      f"from the last checkpoint"
    else:
        state, error = "failed", f"the worker exited with status {code}: {log_tail(run_dir)}"
    write_status(run_dir, **{**status, "state": state, "error": error})


def log_tail(run_dir: Path, lines: int = 5) -> str:
    """The last lines of the run's worker log."""
    try:
        text = (Path(run_dir) / WORKER_LOG).read_text(errors="replace")
    except OSError:
        return "(no log)"
    return " | ".join(text.strip().splitlines()[-lines:]) or "(empty log)"


def supervise(runs_dir, max_parallel: int = 1, poll: float = 0.25,
              idle_exit: float = IDLE_EXIT_SECONDS, lock_fd: int | None = None) -> None:
    """Start queued runs, at most ``max_parallel`` at a time, until idle; one per runs folder.

    ``lock_fd``: a descriptor of the lock file, already locked by whoever started us.
    """
    runs_dir = Path(runs_dir).resolve()
    lock = _Lock(runs_dir)
    if lock_fd is not None:
        lock.handle = os.fdopen(lock_fd, "a+")
    elif not lock.acquire():
        return  # another supervisor owns this folder
    workers: dict[str, tuple[Path, subprocess.Popen]] = {}
    idle_since = time.monotonic()
    try:
        while True:
            for name, (run_dir, process) in list(workers.items()):
                if process.poll() is not None:  # reaps finished workers: no zombies
                    _worker_exited(run_dir, process)
                    del workers[name]
            queued = _queued_runs(runs_dir)
            busy = set(workers) | _live_runs(runs_dir)
            for run_dir, status in queued:
                if len(busy) >= max_parallel:
                    break
                workers[run_dir.name] = (run_dir, _start_worker(run_dir, status))
                busy.add(run_dir.name)
            if workers or busy or queued:
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since > idle_exit:
                lock.release()  # then look once more: a run submitted meanwhile is not stranded
                if not _queued_runs(runs_dir) or not lock.acquire():
                    return
                idle_since = time.monotonic()
            time.sleep(poll)
    finally:
        lock.release()


# --- the worker ---
def worker_main(run: RunRef, resume: bool = False) -> int:
    """Train one run in this process, then build its explore caches; the exit status."""
    from aelab.runs.train import trainer_for

    run_dir = RunRef.unchecked(run).path
    terminated = []
    signal.signal(signal.SIGTERM, lambda *_: terminated.append(True))
    trainer = trainer_for(run_dir, should_stop=lambda: bool(terminated) or stop_file(run_dir).exists())
    beating = trainer.record.start_heartbeat(HEARTBEAT_SECONDS)
    try:
        status = trainer.run(resume=resume)
    except Exception:
        return 1  # the trainer recorded the failure in status.json
    finally:
        beating.set()
    finish_caches(run_dir, status, trainer.config.caches)
    return 0


def finish_caches(run_dir: Path, status: dict, caches: bool = True) -> dict:
    """After a ``done`` run, build its explore caches if ``caches``; the final status.

    A cache that fails to build leaves the run ``done`` (the pages rebuild caches on demand).
    """
    from aelab.metrics.results import rebuild_caches

    if status["state"] != "done" or not caches:
        return status
    write_status(run_dir, **{**status, "caches": "building"})
    state = {}

    def phase(name: str, index: int, total: int) -> None:  # the Runs page shows it
        state.update(phase=name, phase_progress=index / total, phase_note="")
        write_status(run_dir, **{**status, "caches": "building", **state})

    def note(message: str) -> None:
        if state:
            write_status(run_dir, **{**status, "caches": "building", **state, "phase_note": message})

    try:
        rebuild_caches(run_dir, note, phase)
        return write_status(run_dir, **{**status, "caches": "ready"})
    except Exception as exc:
        return write_status(run_dir, **{**status, "caches": f"failed: {type(exc).__name__}: {exc}"})


# --- the local backend ---
class LocalBackend:
    """The execution backend of this machine: queued run folders, started by the supervisor.

    Follows ``aelab.runs.execution.Backend``: ``submit`` queues a prepared run folder and
    makes sure a supervisor is alive, ``state`` reads its status (``interrupted`` if
    its worker vanished), ``cancel`` asks it to stop.
    """

    name = "local"

    def __init__(self, runs_dir, max_parallel: int | None = None, start_supervisor: bool = True):
        self.runs_dir = Path(runs_dir).resolve()
        self.max_parallel = max_parallel
        self.start_supervisor = start_supervisor

    def ensure_served(self) -> None:
        """Make sure a supervisor serves this runs folder (no-op when disabled, as in tests)."""
        if self.start_supervisor:
            ensure_supervisor(self.runs_dir, self.max_parallel)

    def submit(self, run_dir: Path, resume: bool = False) -> None:
        """Queue the prepared run folder ``run_dir``; ``resume`` continues from its checkpoint."""
        run_dir = Path(run_dir)
        stop_file(run_dir).unlink(missing_ok=True)
        status = read_status(run_dir)
        extra = {"resume": True, "error": None} if resume else {}
        write_status(run_dir, **{**status, "state": "queued", **extra, "backend": "local",
                                  "submitted": time.time()})
        self.ensure_served()

    def state(self, run_dir: Path) -> dict:
        """The run's status."""
        return refresh_status(Path(run_dir))

    def cancel(self, run_dir: Path) -> dict:
        """Ask the run to stop: a queued run is cancelled at once, a running one at its next step.

        A run of another backend whose driver still keeps its heartbeat (a Ray sweep) is
        cancelled by that driver, which sees the same stop marker.
        """
        run_dir = Path(run_dir)
        stop_file(run_dir).touch()
        status = read_status(run_dir)
        if status["state"] == "queued" and not driven_elsewhere(status):  # no process to stop
            stop_file(run_dir).unlink(missing_ok=True)
            return write_status(run_dir, **{**status, "state": "cancelled"})
        return status


# --- the operations ---
def _run_dirs(runs_dir: Path) -> list[Path]:
    """The run folders of ``runs_dir``: its direct sub-folders (never a link that leads out)."""
    if not runs_dir.is_dir():
        return []
    root = runs_dir.resolve()
    return sorted(p for p in root.iterdir() if not p.name.startswith(".") and p.is_dir()
                  and p.resolve().parent == root)


def _links_out(runs_dir: Path) -> list[Path]:
    """Entries of ``runs_dir`` that are links to folders elsewhere (listed, never read)."""
    if not runs_dir.is_dir():
        return []
    root = runs_dir.resolve()
    return [p for p in root.iterdir() if not p.name.startswith(".") and p.is_symlink()
            and p.is_dir() and p.resolve().parent != root]


class RunManager:
    """Submit, list, watch, cancel, resume and delete background runs in one runs folder."""

    def __init__(self, runs_dir=None, max_parallel: int | None = None, start_supervisor: bool = True):
        self.runs_dir = runs_root(runs_dir).resolve()
        self.backend = LocalBackend(self.runs_dir, max_parallel, start_supervisor)

    def _dir(self, run_id: "str | RunRef") -> Path:
        """The folder of a run id, confined to this runs folder (``RunRef.checked``); a
        ``RunRef`` the CLI resolved with ``anywhere`` may name a run folder elsewhere."""
        return RunRef.checked(run_id, self.runs_dir).path

    def _backend(self, run_dir: Path) -> "LocalBackend":
        """This folder's backend, or for a run folder elsewhere (``train --out``) one serving
        its own parent folder, whose supervisor is the one that starts it."""
        if run_dir.parent == self.runs_dir:
            return self.backend
        return LocalBackend(run_dir.parent, self.backend.max_parallel, self.backend.start_supervisor)

    def submit(self, variant: str, dataset: str, model: dict | None = None,
               train: dict | None = None) -> str:
        """Validate, write a ``queued`` run folder and make sure it will be started; its id."""
        from aelab.training.setup import prepare_run

        run_dir = prepare_run(variant, dataset, model, train, runs_dir=self.runs_dir)
        self.backend.submit(run_dir)
        return run_dir.name

    def list(self) -> list[dict]:
        """One row per run folder: id, variant, dataset, state, progress, device; damaged ones flagged."""
        rows = []
        for run_dir in _run_dirs(self.runs_dir):
            try:
                rows.append(self.describe(run_dir))
            except RunError as exc:
                rows.append({"id": run_dir.name, "state": "damaged", "damaged": str(exc)})
        for link in _links_out(self.runs_dir):
            rows.append({"id": link.name, "state": "damaged", "damaged": "a symbolic link to a "
                         "folder outside the runs folder; it is not read"})
        return sorted(rows, key=lambda row: row["id"])

    def describe(self, run_dir: Path) -> dict:
        config = read_config(run_dir)
        status = refresh_status(run_dir)
        return {"id": run_dir.name, "variant": config["variant"], "dataset": config["dataset"],
                "latent_dim": config["model_config"].latent_dim, "created": config.get("created"),
                **status}

    def status(self, run_id: str) -> dict:
        """The run's current status (``interrupted`` if its worker vanished)."""
        return self.backend.state(self._dir(run_id))

    def show(self, run_id: str) -> dict:
        """Status, config and the latest logged metrics of a run."""
        run_dir = self._dir(run_id)
        metrics = loss_rows(read_metrics(run_dir))
        return {**self.describe(run_dir), "config": read_config(run_dir)["model"],
                "latest_metrics": metrics[-1] if metrics else None}

    def cancel(self, run_id: str, wait: float = 3.0) -> dict:
        """Stop a queued or running run (state ``cancelled``, last checkpoint kept)."""
        run_dir = self._dir(run_id)
        status = refresh_status(run_dir)
        if status["state"] in FINISHED:
            raise AelabError(f"run {run_dir.name} is already {status['state']}; nothing to cancel")
        if self.backend.cancel(run_dir)["state"] == "cancelled":
            return read_status(run_dir)
        return self.wait(run_id, timeout=wait)

    def resume(self, run_id: str) -> dict:
        """Queue an ``interrupted`` or ``cancelled`` run to continue from its last checkpoint."""
        run_dir = self._dir(run_id)
        status = refresh_status(run_dir)
        if status["state"] not in ("interrupted", "cancelled"):
            raise AelabError(f"run {run_dir.name} is {status['state']}; only interrupted or "
                             f"cancelled runs can be resumed")
        self._backend(run_dir).submit(run_dir, resume=True)
        return read_status(run_dir)

    def delete(self, run_id: "str | RunRef") -> list[str]:
        """Remove a run: the files a run writes (``folder.RUN_FILES``), then its folder if
        nothing else is in it; a running run is cancelled first. Returns the names left
        (files aelab did not write, such as a user's notes), which keep the folder."""
        run_dir = self._dir(run_id)
        if not (run_dir / "config.json").is_file() or run_dir.is_symlink():
            raise RunError(f"{run_dir.name} holds no config.json, so it is not a run; it was not "
                           f"deleted (remove it by hand if you are sure)")
        here = Path.cwd().resolve()
        if here == run_dir or run_dir in here.parents:
            raise RunError(f"run {run_dir.name} is the folder you are in (or holds it); it was "
                           f"not deleted (name it from outside, e.g. from its parent folder)")
        try:
            if refresh_status(run_dir)["state"] in ("running", "queued"):
                self.cancel(run_id, wait=10.0)
        except RunError:
            pass  # a damaged folder can still be deleted
        return delete_run_files(run_dir)

    def wait(self, run_id: str, states=FINISHED, timeout: float = 600.0, poll: float = 0.1) -> dict:
        """Poll until the run reaches one of ``states`` or ``timeout`` passes; the last status."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.status(run_id)
            if status["state"] in states or time.monotonic() > deadline:
                return status
            time.sleep(poll)
