"""A study's results: its trials' final metrics, and a metric against a grid value.

Reads run folders only: ``config.json`` (the study record and the settings as
validated), ``status.json``, ``eval.json`` (the ``evaluate`` metrics, when
built) and the last row of ``metrics.jsonl`` (training loss terms, prefixed
``train_``). ``summarise_metric`` gives the mean and standard deviation over
seeds at each grid value, and the PCA baseline of the same metric where
``evaluate`` computes one (``pca_<metric>``, e.g. ``recon_mse`` against
``pca_recon_mse``: PCA with as many components as the code, survey section 2).
"""
from __future__ import annotations

import math
from pathlib import Path

from aelab.errors import RunError
from aelab.runs.folder import ROW_BOOKKEEPING, loss_rows, read_config, read_json, read_metrics
from aelab.runs.local import refresh_status
from aelab.runs.study import study_trials


def list_studies(runs_dir) -> list[dict]:
    """One row per study in the runs folder: id, variant, dataset, grid, seeds, trial counts."""
    rows = []
    for study_id, run_dirs in study_trials(runs_dir).items():
        first = read_json(run_dirs[0] / "config.json", "config")
        statuses = [_status(d) for d in run_dirs]
        states = [s["state"] for s in statuses]
        rows.append({"id": study_id, "variant": first["variant"], "dataset": first["dataset"],
                     "grid": first["study"].get("grid", {}), "seeds": first["study"].get("seeds"),
                     "trials": len(run_dirs), "done": states.count("done"),
                     "active": sum(s in ("queued", "running") for s in states),
                     "backend": ", ".join(sorted({s.get("backend") or "local" for s in statuses})),
                     "created": min(_created(d) for d in run_dirs)})
    return sorted(rows, key=lambda r: -r["created"])


def _status(run_dir: Path) -> dict:
    try:
        return refresh_status(run_dir)  # a vanished worker's trial: interrupted
    except RunError:
        return {"state": "damaged"}


def _created(run_dir: Path) -> float:
    try:
        return float(read_json(run_dir / "config.json", "config").get("created") or 0)
    except RunError:
        return 0.0


def final_metrics(run_dir) -> dict[str, float]:
    """Numbers a trial ended with: ``eval.json`` entries, then ``train_<term>`` of the last step."""
    run_dir = Path(run_dir)
    values: dict[str, float] = {}
    try:
        scores = read_json(run_dir / "eval.json", "eval")
    except RunError:
        scores = {}
    for key, value in scores.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool) and key != "n_images":
            values[key] = float(value)
    logged = loss_rows(read_metrics(run_dir))
    for key, value in (logged[-1] if logged else {}).items():
        if key not in ROW_BOOKKEEPING and isinstance(value, (int, float)):
            values[f"train_{key}"] = float(value)
    return values


def trial_rows(runs_dir, study_id: str) -> list[dict]:
    """One row per trial, in grid then seed order: run id, grid point (validated values),
    seed, state, progress, metrics."""
    rows = []
    for run_dir in study_trials(runs_dir, study_id).get(study_id, []):
        try:
            config, status = read_config(run_dir), refresh_status(run_dir)
        except RunError as exc:
            rows.append({"id": run_dir.name, "state": "damaged", "error": str(exc), "point": {},
                         "seed": None, "metrics": {}})
            continue
        settings = {**config["model"], **config["train"]}
        point = {name: settings.get(name, raw) for name, raw in config["study"]["point"].items()}
        rows.append({"id": run_dir.name, "point": point, "seed": config["study"]["seed"],
                     "state": status["state"], "progress": float(status.get("progress") or 0),
                     "error": status.get("error"), "metrics": final_metrics(run_dir)})
    return sorted(rows, key=lambda r: (tuple(_sort_key(v) for v in r["point"].values()),
                                       r["seed"] if r["seed"] is not None else -1))


def metric_names(rows: list[dict]) -> list[str]:
    """Metrics present in at least one finished trial (baselines left out), sorted."""
    names = {k for r in rows if r["state"] == "done" for k in r["metrics"]}
    return sorted(n for n in names if not n.startswith("pca_"))


def summarise_metric(rows: list[dict], metric: str, param: str) -> list[dict]:
    """Per series (the other grid values) and value of ``param``: mean, std, n, seeds' values
    and the mean PCA baseline (None where there is none), over finished trials."""
    groups: dict[tuple, dict] = {}
    for row in rows:
        if row["state"] != "done" or metric not in row["metrics"] or param not in row["point"]:
            continue
        others = tuple(sorted((k, _text(v)) for k, v in row["point"].items() if k != param))
        group = groups.setdefault((others, _sort_key(row["point"][param])),
                                  {"series": ", ".join(f"{k}={v}" for k, v in others) or "all",
                                   "x": row["point"][param], "values": [], "baseline": []})
        group["values"].append(row["metrics"][metric])
        if f"pca_{metric}" in row["metrics"]:
            group["baseline"].append(row["metrics"][f"pca_{metric}"])
    out = []
    for _, group in sorted(groups.items(), key=lambda item: item[0]):
        values = group.pop("values")
        mean = sum(values) / len(values)
        std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
        baseline = group.pop("baseline")
        out.append({**group, "mean": mean, "std": std, "n": len(values), "values": values,
                    "baseline": sum(baseline) / len(baseline) if baseline else None})
    return out


def _text(value) -> str:
    return ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def _sort_key(value):
    """Numbers in numeric order before anything else in text order."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, float(value), "")
    return (1, 0.0, _text(value))


def metric_figure(summary: list[dict], metric: str, param: str):
    """Plotly figure: the metric's mean against ``param`` with ±1 std bars per series, each
    seed as a dot, and the PCA baseline dashed where there is one."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for series in dict.fromkeys(s["series"] for s in summary):
        points = [s for s in summary if s["series"] == series]
        xs = [_text(p["x"]) if not isinstance(p["x"], (int, float)) else p["x"] for p in points]
        fig.add_scatter(x=xs, y=[p["mean"] for p in points], name=f"{series} (mean ± std)",
                        mode="lines+markers",
                        error_y={"type": "data", "array": [p["std"] for p in points]})
        fig.add_scatter(x=[x for x, p in zip(xs, points) for _ in p["values"]],
                        y=[v for p in points for v in p["values"]], mode="markers",
                        name=f"{series} (each seed)", marker={"size": 5, "opacity": 0.5})
        if any(p["baseline"] is not None for p in points):
            fig.add_scatter(x=xs, y=[p["baseline"] for p in points], name=f"{series} PCA baseline",
                            mode="lines", line={"dash": "dash"})
    fig.update_layout(xaxis_title=param, yaxis_title=metric, height=420,
                      margin={"l": 10, "r": 10, "t": 30, "b": 10})
    return fig
