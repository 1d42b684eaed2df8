"""Disentanglement scores with their 95% bootstrap intervals as the Disentanglement page shows
them: as text ("0.452 [0.431, 0.470]") and as a chart of runs and reference encoders with error
bars, so that a student sees when two runs are not really different. No streamlit here.
"""
from __future__ import annotations

from aelab.metrics.bootstrap import format_interval, interval_key
from aelab.metrics.disentanglement import SCORES

MEANING = ("In brackets, each score's 95% bootstrap interval: the score computed again on resampled "
           "sets of its evaluation points, so it shows how much the number owes to which points "
           "happened to be drawn. Where the intervals of two scores overlap, this scoring does not tell "
           "them apart; where they do not, the gap is not the luck of the draw. It says nothing about "
           "training: the same settings trained with another seed can land much further away (a "
           "study's spread over seeds shows how far).")  # what every page with intervals says
DIGITS = 3  # the page's scores run from 0.001 (noise) to 1: two digits would hide the small ones


def shown(scores: dict, name: str, digits: int = DIGITS) -> str:
    """Score ``name`` of ``scores`` with its interval, or alone when it has none."""
    return format_interval(scores[name], scores.get(interval_key(name)), digits)


def score_columns(scores: dict) -> dict:
    """Each disentanglement score of ``scores`` with its interval beside it (``<score>_ci``,
    None when it has none): a row of a table ``aelab.ui.tables.metric_table`` shows."""
    return {column: value for name in SCORES
            for column, value in ((name, scores[name]), (interval_key(name), scores.get(interval_key(name))))}


def overlapping(a: dict, b: dict, name: str) -> bool | None:
    """True if the intervals of score ``name`` of two scorings overlap (the two are not
    clearly different), None when either has no interval."""
    ca, cb = a.get(interval_key(name)), b.get(interval_key(name))
    if ca is None or cb is None:
        return None
    return ca[0] <= cb[1] and cb[0] <= ca[1]


def differences(this: dict, others: list[tuple[str, dict]], keys=SCORES, name=None) -> list[str]:
    """One sentence per other scoring ``(label, scores)``: on which of ``keys`` (named by
    ``name``, default ``metric_name``) it is not clearly different from the scores ``this``
    (their 95% intervals overlap), and on which it is, with both values."""
    from aelab.metrics.names import metric_name

    metric_name = name or metric_name
    lines = []
    for other, values in others:
        same = [metric_name(k) for k in keys if overlapping(this, values, k)]
        apart = [f"{metric_name(k)} ({values[k]:.3f} against {this[k]:.3f})"
                 for k in keys if overlapping(this, values, k) is False]
        parts = ([f"not clearly different on {', '.join(same)}"] if same else []) + (
            [f"clearly different on {', '.join(apart)}"] if apart else [])
        if parts:
            lines.append(f"{other}: " + "; ".join(parts) + ".")
    return lines


def comparison_figure(entries: list[tuple[str, dict]], references: dict[str, dict] | None = None):
    """One Plotly chart of every score (x) of each scored run in ``entries`` (label, scores)
    and of the reference encoders (dimmer, open markers): a point per score with its 95%
    interval as an error bar, runs side by side within a score."""
    import plotly.graph_objects as go

    from aelab.metrics.names import metric_name

    names = [metric_name(m) for m in SCORES]
    from aelab.explore.disentangle_lesson import reference_scores  # the data below this module

    references = reference_scores() if references is None else references
    rows = [(label, scores, False) for label, scores in entries]
    rows += [(f"{name} (reference)", scores, True) for name, scores in references.items()]
    width = 0.8 / max(len(rows), 1)
    figure = go.Figure()
    for i, (label, scores, reference) in enumerate(rows):
        offset = -0.4 + width * (i + 0.5)
        y = [float(scores[m]) for m in SCORES]
        cis = [scores.get(interval_key(m)) or [v, v] for m, v in zip(SCORES, y)]
        figure.add_trace(go.Scatter(
            x=[j + offset for j in range(len(SCORES))], y=y, mode="markers", name=label,
            marker=dict(size=8, symbol="circle-open" if reference else "circle",
                        opacity=0.6 if reference else 1.0),
            error_y=dict(type="data", symmetric=False, array=[hi - v for (_, hi), v in zip(cis, y)],
                         arrayminus=[v - lo for (lo, _), v in zip(cis, y)], thickness=1.5, width=3),
            customdata=[f"[{lo:.3f}, {hi:.3f}]" for lo, hi in cis], text=names,
            hovertemplate=f"{label}<br>%{{text}} %{{y:.3f}} %{{customdata}}<extra></extra>"))
    figure.update_layout(
        height=380, margin=dict(l=10, r=10, t=10, b=10), yaxis=dict(title="score", range=[-0.03, 1.03]),
        xaxis=dict(tickvals=list(range(len(SCORES))), ticktext=names, range=[-0.5, len(SCORES) - 0.5]),
        legend=dict(orientation="h", yanchor="top", y=-0.12))
    return figure


PROBES = {"knn_acc": "5-NN accuracy", "linear_acc": "linear-probe accuracy"}


def latent_differences(rows: list[dict]) -> list[str]:
    """``differences`` of the Latent space score table: PCA codes of the same size and raw pixels
    against the codes, on the probe accuracies (the rows score the same test points)."""
    codes = next((r for r in rows if r["space"] == "codes"), None)
    if codes is None:
        return []
    return differences(codes, [(r["space"], r) for r in rows if r is not codes], tuple(PROBES), PROBES.get)
