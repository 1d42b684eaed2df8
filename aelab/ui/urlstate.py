"""State in the URL: widgets whose values live in the query string, so a link reopens the same view."""
from __future__ import annotations

import streamlit as st


def _adopt_url(param: str, key: str, parse, valid) -> None:
    """Put the URL's ``param`` into widget ``key`` when the URL brought a value this
    session has not seen yet (a shared link, a link on the Lesson page); a value the
    widget itself wrote is not adopted again, so the widget keeps what the user picks."""
    raw = st.query_params.get(param)
    seen = f"_url.{key}"
    if raw is None or st.session_state.get(seen) == raw:
        return
    st.session_state[seen] = raw
    try:
        value = parse(raw)
    except ValueError:
        return
    if valid(value):
        st.session_state[key] = value


def _write_url(param: str, key: str, raw: str | None) -> None:
    """Show the widget's value in the URL (``None``: drop the parameter)."""
    st.session_state[f"_url.{key}"] = raw
    if raw is None:
        st.query_params.pop(param, None)
    elif st.query_params.get(param) != raw:
        st.query_params[param] = raw


def url_selectbox(label: str, options: list, key: str, param: str, *, index: int = 0,
                  format_func=str, always: bool = False, **kwargs):
    """``st.selectbox`` whose value lives in the URL query parameter ``param`` (by its
    ``str``); shown in the URL when it is not the default, or always with ``always``."""
    by_text = {str(o): o for o in options}
    _adopt_url(param, key, lambda raw: by_text[raw] if raw in by_text else _bad(raw),
               lambda v: True)
    # a value already in the session (the user's, or the URL's just adopted) wins over ``index``;
    # passing both would only log Streamlit's "default value and Session State" warning
    shown = 0 if key in st.session_state else index
    value = st.selectbox(label, options, index=shown, format_func=format_func, key=key, **kwargs)
    default = options[index] if options else None
    _write_url(param, key, None if value is None or (value == default and not always) else str(value))
    return value


def url_multiselect(label: str, options: list[str], key: str, param: str, default: list[str],
                    **kwargs) -> list[str]:
    """``st.multiselect`` of strings whose value is ``param=a,b`` in the URL."""
    _adopt_url(param, key, lambda raw: [o for o in raw.split(",") if o in options],
               lambda v: bool(v))
    value = st.multiselect(label, options, default=default, key=key, **kwargs)
    _write_url(param, key, ",".join(value) if value != default else None)
    return value


def url_number(label: str, low: int, high: int, value: int, key: str, param: str, **kwargs) -> int:
    """``st.number_input`` of an integer kept in the URL when not ``value``."""
    _adopt_url(param, key, int, lambda v: low <= v <= high)
    number = st.number_input(label, low, high, value, key=key, **kwargs)
    _write_url(param, key, None if number == value else str(number))
    return number


def _bad(raw: str):
    raise ValueError(raw)
