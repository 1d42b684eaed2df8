"""Tables of metrics as a person reads them: human names with a one-line tooltip, numbers
rounded, and an empty cell that says why ("n/a - ..."), never "None".

The data stay as they are (raw keys, NaN), so a download and the tests see the numbers; only
what is drawn changes (column labels and help from ``column_config``, cell text from a pandas
``Styler``).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from aelab.metrics.names import metric_help, metric_name, term_help, term_name

MISSING = "not measured for this run"  # the default reason of an empty cell


def metric_table(rows, key: str, why: dict[str, str] | None = None, names: tuple[str, ...] = (),
                 digits: int = 4, **kwargs):
    """``st.dataframe`` of ``rows`` (a DataFrame or a list of dicts) whose columns are metric
    keys: each column under ``metric_name`` with ``metric_help`` as its tooltip; an empty
    cell reads "n/a - <why>" (``why``: column, or the value of a ``names`` column's row, ->
    reason; else ``MISSING``); the cells of the ``names`` columns (metric keys as values) show
    their human names. Floats are shown with ``digits`` decimals."""
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows)
    why = why or {}
    styler = frame.style
    for column in frame.columns:
        if column in names:
            styler = styler.format(metric_name, subset=[column])
            continue
        numeric = pd.api.types.is_float_dtype(frame[column])
        styler = styler.format(precision=digits if numeric else None,
                               na_rep=f"n/a - {why.get(column, MISSING)}", subset=[column])
    for name in names:  # rows named by a metric: their own reason for an empty cell
        for position, metric in enumerate(frame[name]):
            if metric in why:
                styler = styler.format(na_rep=f"n/a - {why[metric]}", precision=digits,
                                       subset=pd.IndexSlice[frame.index[position], _values(frame, names)])
    config = {column: st.column_config.Column(metric_name(column), help=metric_help(column) or None)
              for column in frame.columns if isinstance(column, str) and metric_help(column)}
    config.update(kwargs.pop("column_config", {}))
    return st.dataframe(styler, column_config=config, key=key, **kwargs)


def _values(frame: pd.DataFrame, names: tuple[str, ...]) -> list:
    return [c for c in frame.columns if c not in names and pd.api.types.is_numeric_dtype(frame[c])]


def metrics_by_run(metrics: dict[str, dict], key: str, why: dict[str, str] | None = None, **kwargs):
    """One row per metric (its human name, then one column per run), so long run labels
    never cut a row off, and what each metric means below it, in full (the Runs page's final
    metrics)."""
    keys = list(dict.fromkeys(k for scores in metrics.values() for k in scores))
    frame = pd.DataFrame({"metric": keys,
                          **{run: [scores.get(k, np.nan) for k in keys] for run, scores in metrics.items()}})
    shown = metric_table(frame, key, why=why, names=("metric",), hide_index=True, **kwargs)
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
