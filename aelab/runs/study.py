"""Studies: a grid of settings times seeds, each trial an ordinary run folder.

A trial's ``config.json`` carries ``study = {id, point, seed, grid, seeds}``;
nothing else marks it, so ``runs list``, the pages and ``evaluate`` treat it
like any run. The study id is derived from the study's settings unless one is
given, so running the same command again finds the trials it made before:
``done`` ones are kept, ``interrupted`` or ``cancelled`` ones resume from
their last checkpoint, missing ones are created. A backend of
``aelab.runs.execution`` runs the trials; this module only creates and watches them.
"""
from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from aelab.config import TrainConfig
from aelab.errors import AelabError, ConfigError, RunError
from aelab.runs.folder import FINISHED, read_json, runs_root

TRAIN_FIELDS = frozenset(f.name for f in dataclasses.fields(TrainConfig))
RETRIES = 3  # resumes of a trial whose worker died while the study is watched


def parse_grid(items: list[str]) -> dict[str, list[str]]:
    """``["beta=1,4", "latent_dim=2;8"]`` -> ``{"beta": ["1", "4"], ...}``.

    Values are split on commas, or on semicolons when the text holds one (so a
    tuple value such as ``hidden=64,32;128`` stays whole).
    """
    grid: dict[str, list[str]] = {}
    for item in items:
        name, sep, values = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ConfigError(f"--grid expects NAME=v1,v2,..., got {item!r}")
        parts = [v.strip() for v in values.split(";" if ";" in values else ",")]
        if not all(parts):
            raise ConfigError(f"--grid {name} has an empty value in {values!r}")
        twice = next((v for i, v in enumerate(parts) if v in parts[:i]), None)
        if twice is not None:
            raise ConfigError(f"--grid {name} lists the value {twice} twice")
        if name in grid:
            raise ConfigError(f"--grid {name} is given twice; list all its values in one --grid")
        if name == "seed":
            raise ConfigError("seed cannot be a grid parameter; use --seeds K for seeds 0..K-1")
        grid[name] = parts
    return grid


@dataclass
class StudySpec:
    """What a study trains: a variant on a dataset, fixed settings, a grid and seeds."""

    variant: str
    dataset: str
    grid: dict[str, list[str]]
    seeds: int = 1
    params: dict[str, str] = field(default_factory=dict)  # fixed model or training settings
    study_id: str | None = None

    @property
    def id(self) -> str:
        """The given id, else one derived from the settings (the same command, the same id)."""
        if self.study_id:
            return self.study_id
        spec = json.dumps([self.variant, self.dataset, self.grid, self.seeds, self.params],
                          sort_keys=True)
        safe = "".join(c if c.isalnum() else "-" for c in self.dataset.split("/")[-1])[:24]
        return f"{self.variant}-{safe}-{hashlib.sha1(spec.encode()).hexdigest()[:8]}"

    def points(self) -> list[dict[str, str]]:
        """Every grid point, in the order the grid lists names and values."""
        names = list(self.grid)
        return [dict(zip(names, values)) for values in itertools.product(*self.grid.values())]

    def trials(self) -> list[tuple[dict[str, str], int]]:
        """(point, seed) for every trial: each point with seeds 0..seeds-1."""
        return [(point, seed) for point in self.points() for seed in range(self.seeds)]

    def split(self, point: dict[str, str], seed: int) -> tuple[dict, dict]:
        """Model and training parameters of one trial."""
        settings = {**self.params, **point}
        model = {k: v for k, v in settings.items() if k not in TRAIN_FIELDS}
        train = {k: v for k, v in settings.items() if k in TRAIN_FIELDS}
        return model, {**train, "seed": seed}

    def sweep_argv(self) -> list[str]:
        """The ``sweep`` arguments of this study (its id given, so the same trials are found)."""
        argv = ["--variant", self.variant, "--dataset", self.dataset, "--seeds", str(self.seeds),
                "--study", self.id]
        for name, values in self.grid.items():  # as parse_grid reads them back
            argv += ["--grid", f"{name}={(';' if any(',' in v for v in values) else ',').join(values)}"]
        for name, value in self.params.items():
            argv += ["--param", f"{name}={value}"]
        return argv

    def validate(self) -> None:
        """Check every name and value against the variant and dataset; writes nothing."""
        from aelab.models import get_variant
        from aelab.training.setup import validate_run

        if not self.grid:
            raise ConfigError("a study needs at least one --grid NAME=v1,v2,...")
        if not 1 <= self.seeds <= 1000:
            raise ConfigError(f"--seeds must be between 1 and 1000, got {self.seeds}")
        config = get_variant(self.variant).Config
        known = ({p["name"] for p in config.parameters()} | TRAIN_FIELDS) - {"seed"}
        for name in [*self.grid, *self.params]:
            if name not in known:
                raise ConfigError(f"unknown grid parameter {name!r} for variant {self.variant!r}; "
                                  f"valid parameters: {', '.join(sorted(known))}")
        for name, values in self.grid.items():  # each value alone, so the message can name it
            for value in values:
                try:
                    validate_run(self.variant, self.dataset, *self.split({name: value}, 0))
                except ConfigError as exc:
                    raise ConfigError(f"grid value {name}={value} is invalid: {exc}") from None
        for point in self.points():  # then combinations (cross-field rules)
            try:
                validate_run(self.variant, self.dataset, *self.split(point, 0))
            except ConfigError as exc:
                where = ", ".join(f"{k}={v}" for k, v in point.items())
                raise ConfigError(f"grid point {where} is invalid: {exc}") from None


def trial_key(point: dict, seed: int) -> str:
    return json.dumps({"point": point, "seed": seed}, sort_keys=True)


def study_trials(runs_dir, study_id: str | None = None) -> dict[str, list[Path]]:
    """Run folders of every study in ``runs_dir`` (or of one), by study id, in id order."""
    studies: dict[str, list[Path]] = {}
    root = runs_root(runs_dir)
    if not root.is_dir():
        return studies
    for run_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        try:
            study = read_json(run_dir / "config.json", "config").get("study")
        except RunError:
            continue
        if isinstance(study, dict) and (study_id is None or study.get("id") == study_id):
            studies.setdefault(str(study.get("id")), []).append(run_dir)
    return studies


class Study:
    """The trials of one study in one runs folder, run by one backend."""

    def __init__(self, spec: StudySpec, runs_dir=None, backend=None):
        from aelab.runs.execution import get_backend

        self.spec = spec
        self.runs_dir = runs_root(runs_dir).resolve()
        self.backend = backend or get_backend(self.runs_dir)
        self.run_dirs: list[Path] = []

    def start(self) -> list[Path]:
        """Validate, create missing trials, (re)submit unfinished ones; the trials' folders."""
        from aelab.training.setup import prepare_run

        self.spec.validate()
        existing = {}
        for run_dir in study_trials(self.runs_dir, self.spec.id).get(self.spec.id, []):
            study = read_json(run_dir / "config.json", "config")["study"]
            existing.setdefault(trial_key(study["point"], study["seed"]), run_dir)
        self.run_dirs = []
        for point, seed in self.spec.trials():
            run_dir = existing.get(trial_key(point, seed))
            if run_dir is None:
                record = {"id": self.spec.id, "point": point, "seed": seed,
                          "grid": self.spec.grid, "seeds": self.spec.seeds}
                run_dir = prepare_run(self.spec.variant, self.spec.dataset,
                                      *self.spec.split(point, seed), runs_dir=self.runs_dir,
                                      study=record)
                self.backend.submit(run_dir)
            else:
                self._pick_up(run_dir)
            self.run_dirs.append(run_dir)
        return self.run_dirs

    def _pick_up(self, run_dir: Path) -> None:
        """Continue a trial found from an earlier start of the same study."""
        state = self.backend.state(run_dir)["state"]
        if state in ("interrupted", "cancelled"):
            self.backend.submit(run_dir, resume=True)
        elif state == "queued":
            self.backend.submit(run_dir)
        # running: its worker is alive and writes the folder; done or failed: kept as they are

    def states(self) -> list[dict]:
        """One row per trial: run id, grid point, seed and status."""
        rows = []
        for run_dir in self.run_dirs:
            study = read_json(run_dir / "config.json", "config")["study"]
            rows.append({"id": run_dir.name, "point": study["point"], "seed": study["seed"],
                         **self.backend.state(run_dir)})
        return rows

    def wait(self, on_change: Callable[[list[dict]], None] | None = None,
             poll: float = 0.5, timeout: float | None = None) -> list[dict]:
        """Poll until every trial is finished (or ``timeout``); ``on_change`` sees each new summary.

        A trial ``interrupted`` meanwhile (its worker died) is resumed from its last
        checkpoint, at most ``RETRIES`` times, as Ray retries a task whose worker died.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        last, last_counts, shown, retries = None, None, 0.0, {}
        while True:
            rows = self.states()
            for row, run_dir in zip(rows, self.run_dirs):
                if row["state"] == "interrupted" and retries.get(row["id"], 0) < RETRIES:
                    retries[row["id"]] = retries.get(row["id"], 0) + 1
                    self.backend.submit(run_dir, resume=True)
                    row.update(self.backend.state(run_dir))
            summary = summarise(rows)
            counts = summary.split(" (")[0]  # a new state at once, progress alone every 10 s
            if on_change and summary != last and (counts != last_counts or
                                                  time.monotonic() - shown > 10.0):
                on_change(rows)
                last, last_counts, shown = summary, counts, time.monotonic()
            retrying = any(r["state"] == "interrupted" and retries.get(r["id"], 0) < RETRIES
                           for r in rows)
            if not retrying and all(r["state"] in FINISHED for r in rows):
                return rows
            if deadline is not None and time.monotonic() > deadline:
                return rows
            time.sleep(poll)


def summarise(rows: list[dict]) -> str:
    """``3/8 done, 2 running (45%), 3 queued``: counts by state and the mean progress."""
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["state"]] = counts.get(row["state"], 0) + 1
    progress = sum(min(1.0, float(r.get("progress") or 0)) for r in rows) / max(1, len(rows))
    parts = [f"{counts.pop('done', 0)}/{len(rows)} done"]
    parts += [f"{n} {state}" for state, n in sorted(counts.items())]
    return f"{', '.join(parts)} ({100 * progress:.0f}% of all steps)"


def run_study(spec: StudySpec, runs_dir=None, backend=None,
              on_change: Callable[[list[dict]], None] | None = None) -> tuple[Study, list[dict]]:
    """Start (or pick up) a study and wait for every trial; the study and its final rows."""
    study = Study(spec, runs_dir, backend)
    study.start()
    return study, study.wait(on_change)


def check_backend_args(ray: bool, ray_address: str | None, gpus_per_trial: float = 0.0) -> None:
    """One sentence for contradictory or malformed Ray options."""
    if gpus_per_trial and not (ray or ray_address):
        raise AelabError("--gpus-per-trial needs --ray or --ray-address; the local supervisor "
                         "runs one trial per GPU by itself")
    if gpus_per_trial < 0:
        raise AelabError(f"--gpus-per-trial must be 0 or more, got {gpus_per_trial:g}")
    if ray and ray_address:
        raise AelabError("use --ray (start a local Ray cluster) or --ray-address HOST:PORT "
                         "(join one), not both")
    if ray_address is not None:
        host, _, port = ray_address.rpartition(":")
        if ray_address != "auto" and (not host or not port.isdigit()):
            raise AelabError(f"--ray-address expects HOST:PORT (or auto), got {ray_address!r}")



SWEEP_LOGS = ".sweeps"  # in the runs folder: the log of each sweep started in the background


def start_ray_sweep(spec: StudySpec, runs_dir, ray_address: str, timeout: float = 120.0) -> list[Path]:
    """Start ``python -m aelab sweep ... --ray-address`` as a background process (the study's
    driver, logging to ``<runs>/.sweeps/<study>.log``) and wait until it has written every
    trial's folder; those folders. A driver that stops first raises its own one sentence."""
    import os
    import subprocess
    import sys

    import aelab

    check_backend_args(False, ray_address)
    spec.validate()
    from aelab.runs.ray_backend import check_reachable

    if ray_address != "auto":
        check_reachable(ray_address)
    root = runs_root(runs_dir).resolve()
    logs = root / SWEEP_LOGS
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"{spec.id}.log"
    package_parent = str(Path(aelab.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (package_parent, os.environ.get("PYTHONPATH")) if p)}
    with open(log, "ab") as out:
        driver = subprocess.Popen(
            [sys.executable, "-m", "aelab", "sweep", *spec.sweep_argv(), "--runs-dir", str(root),
             "--ray-address", ray_address], stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT, env=env, start_new_session=True)  # outlives the caller
    deadline = time.monotonic() + timeout
    wanted = len(spec.trials())
    while time.monotonic() < deadline:
        trials = study_trials(root, spec.id).get(spec.id, [])
        if len(trials) >= wanted and all(_taken(d, driver.pid) for d in trials):
            return trials
        if driver.poll() is not None:
            lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
            last = lines[-1].removeprefix("error: ") if lines else f"exit code {driver.returncode}"
            raise AelabError(f"the Ray sweep stopped before starting its trials: {last}")
        time.sleep(0.2)
    raise AelabError(f"the Ray sweep did not start its {wanted} trials within {timeout:.0f} s; "
                     f"its log is {log}")


def _taken(run_dir: Path, driver: int) -> bool:
    """True once the trial is the driver's (it wrote its status) or kept as finished before."""
    from aelab.runs.folder import read_status

    try:
        status = read_status(run_dir)
    except RunError:
        return False
    return status["state"] in ("done", "failed") or (status.get("driver") or {}).get("pid") == driver
