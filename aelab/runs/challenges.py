"""A class challenge: the teacher locks the data, the variants, the code size and the
training budget, names the goal metric; students train within those settings and every
finished run appears on a leaderboard (no streamlit here; ``aelab.ui.challenge`` shows it).

A challenge is ``<runs>/.challenges/<id>.json`` (written atomically). A run belongs to it
through ``config.json``'s ``challenge`` (``folder.create_run``'s ``meta``). Scores are read
from the caches a run's worker builds right after training (``eval.json``, and
``disentangle.json`` for a shapes run: the same evaluation every page shows); nothing here
computes a score.
"""
from __future__ import annotations

import csv
import io
import json
import re
import secrets
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from aelab.errors import AelabError
from aelab.runs.folder import FINISHED, atomic_write_json, read_json
from aelab.runs.refs import RunRef

FOLDER = ".challenges"
ID = re.compile(r"^c-[0-9a-f]{6}$")
MAX_EPOCHS = 200
MAX_MINUTES = 60.0


class ChallengeError(AelabError):
    """A challenge that cannot be made, found or entered, as one sentence."""


@dataclass(frozen=True)
class Goal:
    title: str        # "lowest test MSE"
    source: str       # "eval" or "disentangle": which cache holds the score
    key: str          # its key there
    lower: bool       # lower is better
    baseline: str | None  # the eval key of PCA's score at the same size, the line to beat
    shapes_only: bool = False


GOALS = {
    "test_mse": Goal("lowest test MSE (reconstruction error on held-out images)", "eval",
                     "recon_mse", True, "pca_recon_mse"),
    "knn_acc": Goal("highest 5-NN accuracy of the codes (test images)", "eval", "knn_acc", False,
                    "pca_knn_acc"),
    "mig": Goal("highest MIG (disentanglement of the sprite factors)", "disentangle", "mig", False,
                None, shapes_only=True),
}


@dataclass
class Challenge:
    id: str
    name: str
    datasets: list[str]
    variants: list[str]
    latent_dim: int | None      # locked code size, or None: the student's choice
    epochs: int                 # the budget: passes over the training split
    max_minutes: float          # and at most this many minutes of training (0: no limit)
    goal: str
    created: float = 0.0
    closed: bool = False
    closed_at: float | None = None
    extra: dict = field(default_factory=dict)

    @property
    def goal_info(self) -> Goal:
        return GOALS[self.goal]

    def locked_text(self) -> str:
        """What the teacher fixed, in a line."""
        size = f"code size {self.latent_dim}" if self.latent_dim else "any code size"
        minutes = f", at most {self.max_minutes:g} min" if self.max_minutes else ""
        return (f"{' or '.join(self.datasets)} · {' or '.join(self.variants)} · {size} · "
                f"{self.epochs} epoch{'s' * (self.epochs != 1)}{minutes}")


def folder(runs_dir) -> Path:
    return Path(runs_dir) / FOLDER


def _path(runs_dir, challenge_id: str) -> Path:
    if not isinstance(challenge_id, str) or not ID.match(challenge_id):
        raise ChallengeError(f"{str(challenge_id)[:40]!r} is not a challenge id (they look like c-1a2b3c); "
                             "open the link the teacher gave you.")
    return folder(runs_dir) / f"{challenge_id}.json"


def create(runs_dir, name: str, datasets: list[str], variants: list[str], latent_dim: int | None,
           epochs: int, max_minutes: float, goal: str, known_datasets: list[str] | None = None) -> Challenge:
    """Validate the teacher's settings (one sentence for the first wrong one), then store the
    challenge; it is open."""
    from aelab.data.datasets import OFFLINE
    from aelab.models import list_variants

    name = " ".join(str(name).split())
    known = list(known_datasets or OFFLINE)
    if not name or len(name) > 60:
        raise ChallengeError("A challenge needs a name of 1 to 60 characters.")
    if not datasets or any(d not in known for d in datasets):
        raise ChallengeError(f"Pick at least one dataset of: {', '.join(known)}.")
    if not variants or any(v not in list_variants() for v in variants):
        raise ChallengeError(f"Pick at least one variant of: {', '.join(list_variants())}.")
    if goal not in GOALS:
        raise ChallengeError(f"The goal must be one of: {', '.join(GOALS)}; got {goal!r}.")
    if GOALS[goal].shapes_only and any(not d.startswith("shapes") for d in datasets):
        raise ChallengeError("MIG needs the sprites' true factors: pick only shapes datasets for it.")
    if latent_dim is not None and not (1 <= int(latent_dim) <= 256):
        raise ChallengeError(f"The code size must be 1 to 256 (or free); got {latent_dim}.")
    if not (1 <= int(epochs) <= MAX_EPOCHS):
        raise ChallengeError(f"The budget must be 1 to {MAX_EPOCHS} epochs; got {epochs}.")
    if not (0 <= float(max_minutes) <= MAX_MINUTES):
        raise ChallengeError(f"The time budget must be 0 (none) to {MAX_MINUTES:g} minutes; got {max_minutes}.")
    challenge = Challenge(f"c-{secrets.token_hex(3)}", name, list(datasets), list(variants),
                          int(latent_dim) if latent_dim else None, int(epochs), float(max_minutes),
                          goal, created=time.time())
    save(runs_dir, challenge)
    return challenge


def save(runs_dir, challenge: Challenge) -> None:
    folder(runs_dir).mkdir(parents=True, exist_ok=True)
    atomic_write_json(_path(runs_dir, challenge.id), asdict(challenge))


def load(runs_dir, challenge_id: str) -> Challenge:
    path = _path(runs_dir, challenge_id)
    if not path.is_file():
        raise ChallengeError(f"There is no challenge {challenge_id} on this server; open the link "
                             "the teacher gave you.")
    raw = read_json(path, f"challenge {challenge_id}")
    try:
        challenge = Challenge(**{k: raw[k] for k in Challenge.__dataclass_fields__ if k in raw})
        if challenge.goal not in GOALS or not challenge.datasets or not challenge.variants:
            raise TypeError
    except TypeError:
        raise ChallengeError(f"The file of challenge {challenge_id} is damaged.") from None
    return challenge


def list_all(runs_dir) -> list[Challenge]:
    """Every readable challenge, newest first."""
    found = []
    for path in sorted(folder(runs_dir).glob("c-*.json")) if folder(runs_dir).is_dir() else []:
        try:
            found.append(load(runs_dir, path.stem))
        except AelabError:
            continue
    return sorted(found, key=lambda c: -c.created)


def close(runs_dir, challenge_id: str) -> Challenge:
    """No new entries from now on (runs already started still finish and count)."""
    challenge = load(runs_dir, challenge_id)
    if not challenge.closed:
        challenge.closed, challenge.closed_at = True, time.time()
        save(runs_dir, challenge)
    return challenge


def check_entry(challenge: Challenge, variant: str, dataset: str, model: dict, train: dict) -> None:
    """Refuse, with one sentence, an entry outside the challenge's settings: whatever a
    browser sends, the locked settings and the budget hold (checked before anything is
    written)."""
    if challenge.closed:
        raise ChallengeError(f"The challenge {challenge.name} is closed: it takes no new entries.")
    if dataset not in challenge.datasets:
        raise ChallengeError(f"This challenge is on {' or '.join(challenge.datasets)}; the dataset "
                             f"{dataset!r} is locked out.")
    if variant not in challenge.variants:
        raise ChallengeError(f"This challenge is for {' or '.join(challenge.variants)}; the variant "
                             f"{variant!r} is locked out.")
    if challenge.latent_dim and model.get("latent_dim") != challenge.latent_dim:
        raise ChallengeError(f"This challenge locks the code size at {challenge.latent_dim}; got "
                             f"{model.get('latent_dim')}.")
    if train.get("epochs") != challenge.epochs:
        raise ChallengeError(f"This challenge's budget is {challenge.epochs} epochs; got {train.get('epochs')}.")
    if float(train.get("max_minutes") or 0) != challenge.max_minutes:
        raise ChallengeError(f"This challenge's time budget is {challenge.max_minutes:g} minutes; got "
                             f"{train.get('max_minutes')}.")
    if train.get("caches") is False:
        raise ChallengeError("A challenge entry is scored when it finishes: its caches cannot be turned off.")


def locked_train(challenge: Challenge) -> dict:
    """The training settings the challenge fixes."""
    return {"epochs": challenge.epochs, "max_minutes": challenge.max_minutes, "caches": True}


def _score(run: RunRef, goal: Goal) -> tuple[float | None, float | None]:
    """(score, PCA baseline) from the run's fresh caches, or (None, None) while not built."""
    from aelab.metrics.results import cached_disentanglement, cached_eval

    evaluation = cached_eval(run)
    baseline = evaluation.get(goal.baseline) if evaluation and goal.baseline else None
    scores = evaluation if goal.source == "eval" else cached_disentanglement(run)
    value = (scores or {}).get(goal.key)
    return (float(value) if isinstance(value, (int, float)) else None,
            float(baseline) if isinstance(baseline, (int, float)) else None)


def _plain(value):
    """A setting as JSON keeps it (tuples become lists), for comparing with a default."""
    return list(value) if isinstance(value, tuple) else value


def _chosen(config: dict, challenge: Challenge) -> str:
    """The settings the student chose (those not locked and not left at their defaults)."""
    from aelab.config import TrainConfig
    from aelab.models import get_variant, make_config

    parts = []
    if len(challenge.variants) > 1:
        parts.append(config["variant"])
    if len(challenge.datasets) > 1:
        parts.append(config["dataset"])
    try:  # the defaults as resolved for this data (e.g. hidden () -> 512,256 for an MLP)
        defaults = make_config(config["variant"], **{k: config["model"][k] for k in
                                                     ("input_shape", "num_classes", "latent_dim", "arch")
                                                     if k in config["model"]}).to_dict()
    except (AelabError, TypeError):
        defaults = {p["name"]: p["default"] for p in get_variant(config["variant"]).Config.parameters()}
    skip = {"input_shape", "num_classes", "latent_dim" if challenge.latent_dim else ""}
    for key, value in config["model"].items():
        if key not in skip and key in defaults and _plain(value) != _plain(defaults[key]):
            parts.append(f"{key}={value}")
    train_defaults = {p["name"]: p["default"] for p in TrainConfig.parameters()}
    for key in ("lr", "batch_size", "seed"):
        if config["train"].get(key, train_defaults[key]) != train_defaults[key]:
            parts.append(f"{key}={config['train'][key]}")
    return ", ".join(parts) or "defaults"


def entries(runs_dir, challenge: Challenge) -> list[dict]:
    """Every run of the challenge, ranked: scored runs by the goal (ties: the earlier run
    first), then the rest (training, scoring, failed) newest first. Each row: ``rank`` (None
    while unscored), ``id``, ``student``, ``score``, ``baseline``, ``settings``, ``state``,
    ``latent_dim``, ``note``."""
    from aelab.runs.local import _run_dirs, refresh_status

    goal, rows = challenge.goal_info, []
    for run_dir in _run_dirs(Path(runs_dir).resolve()):
        try:
            config = json.loads((run_dir / "config.json").read_text())
            if config.get("challenge") != challenge.id:
                continue
            status = refresh_status(run_dir)
            run = RunRef(run_dir.parent, run_dir.name)
            score, baseline = _score(run, goal) if status["state"] == "done" else (None, None)
            settings = _chosen(config, challenge)
        except (OSError, ValueError, KeyError, TypeError, AelabError):
            continue  # a damaged folder is the Runs page's business, not the leaderboard's
        note = status["state"]
        if status["state"] == "done" and score is None:
            caches = status.get("caches") or ""
            note = f"not scored: {caches[8:]}" if caches.startswith("failed") else "scoring"
        rows.append({"rank": None, "id": run_dir.name, "student": config.get("owner") or "(no name)",
                     "score": score, "baseline": baseline, "settings": settings, "state": status["state"],
                     "latent_dim": config["model"].get("latent_dim"), "note": note,
                     "created": config.get("created") or 0.0, "finished": status["state"] in FINISHED})
    scored = sorted((r for r in rows if r["score"] is not None),
                    key=lambda r: ((r["score"] if goal.lower else -r["score"]), r["created"]))
    for i, row in enumerate(scored, 1):
        row["rank"] = i
    rest = sorted((r for r in rows if r["score"] is None), key=lambda r: -r["created"])
    return scored + rest


def baseline_line(rows: list[dict]) -> float | None:
    """PCA's score at the challenge's size, when every scored run shares it (one line to beat)."""
    values = {round(r["baseline"], 12) for r in rows if r["baseline"] is not None}
    return next(iter(values)) if len(values) == 1 else None


def csv_text(challenge: Challenge, rows: list[dict]) -> str:
    """The leaderboard as CSV (raw metric key in the header, for a spreadsheet)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["rank", "student", challenge.goal_info.key, f"pca_baseline_{challenge.goal_info.key}",
                     "latent_dim", "settings", "state", "run_id"])
    for r in rows:
        writer.writerow([r["rank"] or "", r["student"], "" if r["score"] is None else f"{r['score']:.6g}",
                         "" if r["baseline"] is None else f"{r['baseline']:.6g}", r["latent_dim"],
                         r["settings"], r["note"], r["id"]])
    return out.getvalue()
