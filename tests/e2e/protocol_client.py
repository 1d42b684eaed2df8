"""A student without a browser: Streamlit's own websocket protocol, spoken from Python.

Used by bench/classroom_load.py (``--clients protocol``) and tests/e2e/test_classroom_protocol.py.
In a class each student's browser runs on the student's own machine and only the server is
shared; a protocol student makes the server do what a browser's visit makes it do, at a
fraction of a browser's CPU, so N of them on one machine measure the server.

What a visit sends, pinned against streamlit==1.67.0 (requirements.txt) and checked by
capturing a real Chromium visit of ``/traversal?run=demo-vae`` (its requests and websocket
frames through Playwright):

1. ``GET /traversal?run=<id>`` (the page's HTML, the static index of the frontend; the browser
   then loads ~150 static JS/CSS files, cacheable and not fetched here), ``GET
   /_stcore/health`` and ``GET /_stcore/host-config`` (streamlit/web/server/starlette/
   starlette_routes.py; the browser first tries them under the page's path as well);
2. the websocket ``/_stcore/stream`` (starlette_websocket.py): subprotocol ``streamlit``; its
   second and third entries (XSRF token, a session to resume) are absent on a first visit; an
   Origin header of the server's own address is same-origin (``_is_origin_allowed``); the XSRF
   token is only checked to read an auth cookie, which a class has none of;
3. one binary frame, ``BackMsg.rerun_script``: a ``ClientState`` with the query string, an empty
   ``widget_states``, ``page_name`` the URL's path (the server resolves it to the page, as for a
   deep link; ``page_script_hash`` empty) and ``context_info`` (timezone, locale, url, colour
   scheme) - the browser's first frame field for field;
4. the server answers with ``ForwardMsg`` frames: ``new_session``, ``navigation``, the page's
   ``delta``s (elements at ``metadata.delta_path``) and at the end ``script_finished``.
   Messages come in full on a first visit: no ``cached_message_hashes`` are listed yet.
   Images (``imgs`` elements) are separate ``/media/...`` files, fetched as a browser does.

A rerun (a widget moved) is the frame the browser then sends, captured the same way: every
widget's current value in ``widget_states`` (download buttons, being triggers, left out), the
page's ``page_script_hash`` (from the ``navigation`` message) and the hashes of the cacheable
messages it holds (``metadata.cacheable``), so the server may answer a ``ref_hash`` in place of
a message the client has (streamlit/runtime/forward_msg_cache.py).

The Traversal page's picture is the ``iframe`` element whose ``alt`` is ``CAPTION`` (its
srcdoc carries the decoder's weights; the browser decodes and draws the picture from it), or,
for a run the browser cannot decode, an image captioned ``CAPTION``.
"""
from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState

from aelab.explore.webdecoder import CAPTION

ASSET = re.compile(r'(?:src|href)="\./(static/[^"]+)"')  # the frontend's files in its index.html
# every frontend file a Chromium first visit of /traversal loaded (written by
# `python bench/classroom_load.py --record-assets`): the page's HTML names 61 of them, the
# scripts import the rest (Plotly, sliders, images...) as the page's elements arrive
RECORDED_ASSETS = Path(__file__).with_name("traversal_assets.txt")
SUCCESS = {ForwardMsg.FINISHED_SUCCESSFULLY}  # the whole page ran (not a fragment alone)
FRAGMENT_DONE = {ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY}  # a fragment's own rerun ran


@dataclass
class Visit:
    """What one page run brought one student: seconds from its first request (``None``: not seen)."""

    picture_s: float | None = None  # the picture element arrived (and its image, if one)
    finished_s: float | None = None  # script_finished and every new image of the page fetched
    finished_status: int | None = None
    alerts: list[tuple[str, str]] = field(default_factory=list)  # (format, body): st.error etc.
    exceptions: list[str] = field(default_factory=list)  # an uncaught exception on the page
    elements: int = 0
    bytes_received: int = 0
    media: int = 0  # /media files fetched
    table_s: float | None = None  # the first dataframe arrived
    tables: list = field(default_factory=list)  # each dataframe as a pyarrow Table, in order


async def http_get(url: str, timeout: float) -> tuple[int, bytes]:
    """(status, body) of a plain HTTP/1.1 GET (no dependency: the server is on 127.0.0.1)."""
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    reader, writer = await asyncio.wait_for(asyncio.open_connection(parts.hostname, parts.port), timeout)
    try:
        writer.write(f"GET {path or '/'} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n"
                     f"Accept: */*\r\n\r\n".encode())
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    if b"transfer-encoding: chunked" in head.lower():
        body = _unchunk(body)
    return status, body


def _unchunk(body: bytes) -> bytes:
    out, rest = b"", body
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out, rest = out + rest[:size], rest[size + 2:]
    return out


def rerun_message(url: str, widgets=(), page_script_hash: str = "", cached=(), fragment_id: str = "") -> bytes:
    """The browser's ``rerun_script`` frame for ``url``: its first (no widgets, the page named
    by the path), a rerun with every widget's value, or (``fragment_id``) the timed rerun of
    an ``st.fragment(run_every=...)`` the server asked for with ``auto_rerun``."""
    parts = urlsplit(url)
    msg = BackMsg()
    state = msg.rerun_script
    state.query_string = parts.query
    state.widget_states.SetInParent()  # present even when empty, as the browser sends it
    state.widget_states.widgets.extend(widgets)
    state.page_script_hash = page_script_hash
    if not page_script_hash:
        state.page_name = parts.path.strip("/")
    state.cached_message_hashes.extend(cached)
    if fragment_id:
        state.fragment_id, state.is_auto_rerun = fragment_id, True
    info = state.context_info
    info.timezone, info.timezone_offset, info.locale = "UTC", 0, "en-US"
    info.url, info.is_embedded, info.color_scheme = f"{parts.scheme}://{parts.netloc}{parts.path}", False, "light"
    return msg.SerializeToString()


def frontend_files(html: str) -> list[str]:
    """Paths of the frontend files a first visit loads: those the page's HTML names, and the
    ones recorded from a real browser's visit of /traversal (RECORDED_ASSETS)."""
    named = [f"/{a}" for a in ASSET.findall(html)]
    recorded = RECORDED_ASSETS.read_text().split() if RECORDED_ASSETS.is_file() else []
    return list(dict.fromkeys(named + [line for line in recorded if line.startswith("/static/")]))


def first_message(url: str) -> bytes:
    """The browser's first websocket frame for ``url``: rerun the page its path names."""
    return rerun_message(url)


def widget_state(element) -> WidgetState | None:
    """The value a browser reports for a widget it shows untouched (its ``value`` when the
    server set one, else its default); None for elements that are no value widgets."""
    kind = element.WhichOneof("type")
    w = getattr(element, kind)
    state = WidgetState(id=getattr(w, "id", ""))
    if kind == "checkbox":
        state.bool_value = w.value if w.set_value else w.default
    elif kind in ("selectbox", "radio"):
        if not w.set_value and not 0 <= w.default < len(w.options):
            return None  # nothing chosen (a placeholder): the browser reports no value
        state.string_value = w.raw_value if w.set_value else w.options[w.default]
    elif kind == "number_input":
        number = w.value if w.set_value else w.default
        if w.data_type == w.DataType.INT:
            state.int_value = int(number)
        else:
            state.double_value = number
    elif kind == "slider":
        state.double_array_value.data.extend(w.value if w.set_value else w.default)
    else:
        return None
    return state


class Student:
    """One browser's worth of protocol: ``open`` a page as a first visit, then ``move`` widgets
    (a rerun with every widget's value), ``close`` at the end."""

    def __init__(self, base_url: str, timeout: float = 120.0, assets: bool = True):
        self.base_url, self.timeout, self.assets = base_url, timeout, assets
        self.url = ""
        self.ws = None
        self.widgets: dict[str, WidgetState] = {}  # "type:label" -> the value the browser holds
        self.sliders: dict[str, tuple[float, float, float]] = {}  # "slider:label" -> min, max, step
        self.page_script_hash = ""
        self.cache: dict[str, ForwardMsg] = {}  # hash -> cacheable message, as the browser keeps
        self.auto_reruns: dict[str, float] = {}  # fragment id -> seconds between its timed reruns

    async def open(self, path: str) -> Visit:
        """The first visit of ``base_url + path`` (e.g. ``/traversal?run=demo-vae``); returns
        once the script finished and the page's images are fetched."""
        from websockets.asyncio.client import connect

        start = time.monotonic()
        self.url = self.base_url + path
        status, html = await http_get(self.url, self.timeout)
        if status != 200:
            raise RuntimeError(f"GET {self.url} answered {status}")
        if self.assets:  # the frontend's files, as a browser with an empty cache loads them
            await self._fetch_all(frontend_files(html.decode()))
        for endpoint in (f"{self.base_url}/_stcore/health", f"{self.base_url}/_stcore/host-config"):
            status, _ = await http_get(endpoint, self.timeout)
            if status != 200:
                raise RuntimeError(f"GET {endpoint} answered {status}")
        ws_url = "ws" + self.base_url.removeprefix("http") + "/_stcore/stream"
        self.ws = await connect(ws_url, subprotocols=["streamlit"], origin=self.base_url, max_size=None,
                                open_timeout=self.timeout)
        await self.ws.send(first_message(self.url))
        return await self._page_run(start)

    async def move(self, changes: dict[str, list[float]]) -> Visit:
        """Move sliders (``{"slider:Steps": [10]}``) and rerun as the browser does; seconds from
        the frame until the run finished and its new images are fetched."""
        start = time.monotonic()
        for name, value in changes.items():
            self.widgets[name].double_array_value.data[:] = value
        await self.ws.send(rerun_message(self.url, self.widgets.values(), self.page_script_hash,
                                         list(self.cache)))
        return await self._page_run(start)

    async def nudge(self, name: str) -> Visit:
        """Slider ``name`` one step right (back to its minimum at the end): the browser's
        ArrowRight on it."""
        low, high, step = self.sliders[name]
        value = self.widgets[name].double_array_value.data[0] + step
        return await self.move({name: [value if value <= high else low]})

    async def refresh(self, fragment_id: str) -> Visit:
        """The timed rerun of fragment ``fragment_id`` (what the browser sends every
        ``auto_reruns[fragment_id]`` seconds); seconds until it finished."""
        start = time.monotonic()
        await self.ws.send(rerun_message(self.url, self.widgets.values(), self.page_script_hash,
                                         list(self.cache), fragment_id=fragment_id))
        return await self._page_run(start, FRAGMENT_DONE)

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()

    async def _page_run(self, start: float, done=SUCCESS) -> Visit:
        result, media = Visit(), []
        while result.finished_status not in done:
            payload = await asyncio.wait_for(self.ws.recv(), self.timeout)
            result.bytes_received += len(payload)
            msg = ForwardMsg()
            msg.ParseFromString(payload)
            kind = msg.WhichOneof("type")
            if kind == "ref_hash":  # a message this client holds (it said so)
                msg = self.cache[msg.ref_hash]
                kind = msg.WhichOneof("type")
            elif msg.metadata.cacheable:
                self.cache[msg.hash] = msg
            if kind == "navigation" and msg.navigation.page_script_hash:
                self.page_script_hash = msg.navigation.page_script_hash
            elif kind == "page_info_changed":  # the page wrote st.query_params
                self.url = self.url.split("?")[0] + (f"?{msg.page_info_changed.query_string}"
                                                     if msg.page_info_changed.query_string else "")
            elif kind == "auto_rerun":
                self.auto_reruns[msg.auto_rerun.fragment_id] = msg.auto_rerun.interval
            elif kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
                element = msg.delta.new_element
                if element.WhichOneof("type") == "dataframe" and result.table_s is None:
                    result.table_s = time.monotonic() - start
                if self._note(result, element, media) and result.picture_s is None:
                    for img in element.imgs.imgs if element.WhichOneof("type") == "imgs" else ():
                        await self._fetch(img.url, result)  # an image is drawn once fetched
                    result.picture_s = time.monotonic() - start
            elif kind == "script_finished":
                result.finished_status = msg.script_finished
                if msg.script_finished == ForwardMsg.FINISHED_WITH_COMPILE_ERROR:
                    break
        for url in dict.fromkeys(media):  # the page's other images, fetched as the browser does
            await self._fetch(url, result)
        result.finished_s = time.monotonic() - start
        return result

    def _note(self, visit: Visit, element, media: list[str]) -> bool:
        """Record one new element; True when it is the Traversal picture."""
        kind = element.WhichOneof("type")
        visit.elements += 1
        if kind == "alert":
            visit.alerts.append((type(element.alert).Format.Name(element.alert.format), element.alert.body))
        elif kind == "exception":
            visit.exceptions.append(f"{element.exception.type}: {element.exception.message}")
        elif kind == "imgs":
            media += [img.url for img in element.imgs.imgs if img.caption != CAPTION]
            return any(img.caption == CAPTION for img in element.imgs.imgs)
        elif kind == "iframe":
            return element.iframe.alt == CAPTION
        elif kind == "dataframe":
            import pyarrow as pa

            visit.tables.append(pa.ipc.open_stream(element.dataframe.arrow_data.data).read_all())
        state = widget_state(element)
        if state is None:
            return False
        widget = getattr(element, kind)
        name = f"{kind}:{widget.label}"
        # a widget keeps the value it holds, as in the browser, unless the server sets one
        if name not in self.widgets or widget.set_value:
            self.widgets[name] = state
        if kind == "slider":
            self.sliders[name] = (widget.min, widget.max, widget.step)
        return False

    async def _fetch_all(self, paths: list[str], parallel: int = 6) -> None:
        """GET every path, ``parallel`` at a time (a browser's connections per host)."""
        gate = asyncio.Semaphore(parallel)

        async def get(path: str) -> None:
            async with gate:
                status, _ = await http_get(self.base_url + path, self.timeout)
            if status != 200:
                raise RuntimeError(f"GET {path} answered {status}; if streamlit changed, record the "
                                   f"frontend's files again: python bench/classroom_load.py --record-assets")

        await asyncio.gather(*(get(path) for path in paths))

    async def _fetch(self, url: str, result: Visit) -> None:
        status, _ = await http_get(url if url.startswith("http") else self.base_url + url, self.timeout)
        if status != 200:
            raise RuntimeError(f"GET {url} answered {status}")
        result.media += 1


async def visit(base_url: str, path: str, timeout: float = 120.0) -> Visit:
    """One student's first visit of ``path``; its websocket closed at the end."""
    student = Student(base_url, timeout)
    try:
        return await student.open(path)
    finally:
        await student.close()


async def open_all(students: list[Student], path: str, timeout: float) -> list[Visit]:
    """Every student's first visit of ``path`` at once (each its own websocket session)."""
    return list(await asyncio.wait_for(asyncio.gather(*(s.open(path) for s in students)), timeout))


async def move_all(students: list[Student], changes: dict[str, list[float]], timeout: float) -> list[Visit]:
    """Every student moves the same widgets at once."""
    return list(await asyncio.wait_for(asyncio.gather(*(s.move(changes) for s in students)), timeout))


async def nudge_all(students: list[Student], name: str, timeout: float) -> list[Visit]:
    """Every student moves slider ``name`` one step at once."""
    return list(await asyncio.wait_for(asyncio.gather(*(s.nudge(name) for s in students)), timeout))
