"""Tables of metrics as a person reads them: human names with a one-line tooltip, numbers
rounded, and an empty cell that says why ("n/a - ..."), never "None".

The raw keys and full-precision numbers stay in the data, so a download and the tests see
them; what is drawn changes (column labels and help from ``column_config``, cell text from a
pandas ``Styler``). An empty cell holds its "n/a - ..." text in the data itself (its column
then holds text): Streamlit's browser table draws an empty cell as "None" whatever the
``Styler`` says.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from aelab.metrics.bootstrap import format_interval, interval_key
from aelab.metrics.names import metric_help, metric_name, term_help, term_name

MISSING = "not measured for this run"  # the default reason of an empty cell


def metric_table(rows, key: str, why: dict[str, str] | None = None, names: tuple[str, ...] = (),
                 digits: int = 4, **kwargs):
    """``st.dataframe`` of ``rows`` (a DataFrame or a list of dicts) whose columns are metric
    keys: each column under ``metric_name`` with ``metric_help`` as its tooltip; an empty
    cell reads "n/a - <why>" (``why``: column, or the value of a ``names`` column's row, ->
    reason; else ``MISSING``); the cells of the ``names`` columns (metric keys as values) show
    their human names. Floats are shown with ``digits`` decimals. A column with an interval
    column beside it (``<column>_ci``: [lo, hi] per row, ``aelab.metrics.bootstrap``) shows
    each score with its interval, "0.452 [0.431, 0.470]", and the interval column is hidden."""
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows)
    why = why or {}
    # the browser draws an empty cell as "None" whatever the Styler says, so the reason goes
    # into the cell itself; every other cell keeps its number
    shown, texts = _with_reasons(frame, why, names)
    styler = shown.style
    for column in frame.columns:
        if column in names:
            styler = styler.format(metric_name, subset=[column])
        elif column in texts and pd.api.types.is_float_dtype(frame[column]):  # numbers as text, and reasons
            styler = styler.format(lambda v: v if v.startswith("n/a - ") else f"{float(v):.{digits}f}",
                                   subset=[column])
        else:
            styler = styler.format(precision=digits if pd.api.types.is_float_dtype(frame[column]) else None,
                                   na_rep=f"n/a - {why.get(column, MISSING)}", subset=[column])  # hidden ones
    styler = _with_intervals(styler, frame, digits)  # last: a format replaces the cell's earlier ones
    intervals = [interval_key(c) for c in frame.columns if isinstance(c, str) and interval_key(c) in frame.columns]
    if intervals:
        kwargs["column_order"] = [c for c in kwargs.get("column_order") or frame.columns if c not in intervals]
    config = {column: st.column_config.Column(metric_name(column), help=metric_help(column) or None)
              for column in frame.columns if isinstance(column, str) and metric_help(column)}
    config.update(kwargs.pop("column_config", {}))
    return st.dataframe(styler, column_config=config, key=key, **kwargs)


def _with_reasons(frame: pd.DataFrame, why: dict[str, str],
                  names: tuple[str, ...]) -> tuple[pd.DataFrame, set]:
    """``frame`` with each empty cell (outside the ``names`` columns) holding "n/a - <why>":
    the reason of its row's metric (a ``names`` column's value) if ``why`` has one, else of
    its column, else ``MISSING``; such a column turns to text (an Arrow column holds one type),
    its numbers written in full. Also the names of those columns."""
    shown, texts = frame.copy(), set()
    for column in frame.columns:
        hidden = isinstance(column, str) and column.endswith("_ci") and column[:-3] in frame.columns
        if column in names or hidden or not frame[column].isna().any():  # an interval column is hidden
            continue
        reasons = [why.get(column, MISSING)] * len(frame)
        for name in names:
            reasons = [why.get(metric, reason) for metric, reason in zip(frame[name], reasons)]
        shown[column] = [f"n/a - {reason}" if empty else str(value)
                         for value, empty, reason in zip(frame[column], frame[column].isna(), reasons)]
        texts.add(column)
    return shown, texts


def _with_intervals(styler, frame: pd.DataFrame, digits: int):
    """Each cell of a column that has an interval column shown as "score [lo, hi]" (the score
    alone where its row has no interval, "n/a - ..." where it has no score)."""
    for column in frame.columns:
        if not isinstance(column, str) or interval_key(column) not in frame.columns:
            continue
        for label, interval in zip(frame.index, frame[interval_key(column)]):
            value = frame.at[label, column]
            if _is_interval(interval) and isinstance(value, (int, float, np.number)) and not pd.isna(value):
                styler = styler.format(lambda v, ci=tuple(interval): format_interval(float(v), ci, digits),
                                       subset=pd.IndexSlice[[label], [column]])
    return styler


def _is_interval(value) -> bool:
    return isinstance(value, (list, tuple, np.ndarray)) and len(value) == 2


def metrics_by_run(metrics: dict[str, dict], key: str, why: dict[str, str] | None = None, **kwargs):
    """One row per metric (its human name, then one column per run), so long run labels
    never cut a row off, and what each metric means below it, in full (the Runs page's final
    metrics). A score's interval (``<key>_ci`` in a run's metrics) is shown with it."""
    keys = list(dict.fromkeys(k for scores in metrics.values() for k in scores if not k.endswith("_ci")))
    columns = {"metric": keys}
    for run, scores in metrics.items():  # a score's interval (``<key>_ci``) beside the run's column
        columns[run] = [scores.get(k, np.nan) for k in keys]
        if any(interval_key(k) in scores for k in keys):
            columns[interval_key(run)] = [scores.get(interval_key(k)) for k in keys]
    frame = pd.DataFrame(columns)
    shown = metric_table(frame, key, why=why, names=("metric",), hide_index=True, **kwargs)
    if any(isinstance(c, str) and c.endswith("_ci") for c in frame.columns):
        st.caption("In brackets: a score's 95% bootstrap interval (its test images resampled); where "
                   "two runs' intervals overlap, these test images do not tell the runs apart.")
    explain(keys)
    return shown


def explain_terms(terms) -> None:
    """One line per logged loss term under a loss chart: its human name and what it is (why
    it can go negative, where it can), always in view."""
    lines = [f"- **{term_name(t)}**: {term_help(t)}" for t in terms if term_help(t)]
    if lines:
        st.caption("\n".join(lines))


def explain(keys, title: str = "What these numbers mean") -> None:
    """An expander with one line per key: its human name and what it measures (never cut
    off, unlike a table cell)."""
    lines = [f"- **{metric_name(k)}**: {metric_help(k)}" for k in keys if metric_help(k)]
    if lines:
        with st.expander(title):
            st.markdown("\n".join(lines))
