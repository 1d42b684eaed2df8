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
   Messages come in full: the client lists no ``cached_message_hashes``, so no ``ref_hash``.
   Images (``imgs`` elements) are separate ``/media/...`` files, fetched as a browser does.

The Traversal page's picture is the ``iframe`` element whose ``alt`` is ``CAPTION`` (its
srcdoc carries the decoder's weights; the browser decodes and draws the picture from it), or,
for a run the browser cannot decode, an image captioned ``CAPTION``.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

from aelab.webdecoder import CAPTION

SUCCESS = {ForwardMsg.FINISHED_SUCCESSFULLY}  # the whole page ran (not a fragment alone)


@dataclass
class Visit:
    """What one student got: seconds from its first request (``None``: not seen)."""

    picture_s: float | None = None  # the picture element arrived (and its image, if one)
    finished_s: float | None = None  # script_finished and every image of the page fetched
    finished_status: int | None = None
    alerts: list[tuple[str, str]] = field(default_factory=list)  # (format, body): st.error etc.
    exceptions: list[str] = field(default_factory=list)  # an uncaught exception on the page
    elements: int = 0
    bytes_received: int = 0
    media: int = 0  # /media files fetched
    widget_ids: dict[str, str] = field(default_factory=dict)  # element type:label -> widget id


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


def first_message(url: str) -> bytes:
    """The browser's first websocket frame for ``url``: rerun the page its path names."""
    parts = urlsplit(url)
    msg = BackMsg()
    state = msg.rerun_script
    state.query_string = parts.query
    state.widget_states.SetInParent()  # present and empty, as the browser sends it
    state.page_name = parts.path.strip("/")
    info = state.context_info
    info.timezone, info.timezone_offset, info.locale = "UTC", 0, "en-US"
    info.url, info.is_embedded, info.color_scheme = f"{parts.scheme}://{parts.netloc}{parts.path}", False, "light"
    return msg.SerializeToString()


def _note_element(visit: Visit, element, media: list[str]) -> bool:
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
    widget = getattr(element, kind, None)
    if widget is not None and getattr(widget, "id", "") and hasattr(widget, "label"):
        visit.widget_ids[f"{kind}:{widget.label}"] = widget.id
    return False


async def fetch_media(base_url: str, url: str, result: Visit, timeout: float) -> None:
    status, _ = await http_get(url if url.startswith("http") else base_url + url, timeout)
    if status != 200:
        raise RuntimeError(f"GET {url} answered {status}")
    result.media += 1


async def visit(base_url: str, path: str, timeout: float = 120.0) -> Visit:
    """One student opens ``base_url + path`` (e.g. ``/traversal?run=demo-vae``) as a browser's
    first visit does; returns once the script finished and the page's images are fetched."""
    from websockets.asyncio.client import connect

    result, start = Visit(), time.monotonic()
    url = base_url + path
    for endpoint in (url, f"{base_url}/_stcore/health", f"{base_url}/_stcore/host-config"):
        status, _ = await http_get(endpoint, timeout)
        if status != 200:
            raise RuntimeError(f"GET {endpoint} answered {status}")
    ws_url = "ws" + base_url.removeprefix("http") + "/_stcore/stream"
    media: list[str] = []
    async with connect(ws_url, subprotocols=["streamlit"], origin=base_url, max_size=None,
                       open_timeout=timeout) as ws:
        await ws.send(first_message(url))
        while result.finished_status not in SUCCESS:
            payload = await asyncio.wait_for(ws.recv(), timeout)
            result.bytes_received += len(payload)
            msg = ForwardMsg()
            msg.ParseFromString(payload)
            kind = msg.WhichOneof("type")
            if kind == "ref_hash":  # never expected: no cached_message_hashes were sent
                raise RuntimeError("the server sent a cached-message reference to a fresh client")
            if kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
                element = msg.delta.new_element
                if _note_element(result, element, media) and result.picture_s is None:
                    for img in element.imgs.imgs if element.WhichOneof("type") == "imgs" else ():
                        await fetch_media(base_url, img.url, result, timeout)  # drawn once fetched
                    result.picture_s = time.monotonic() - start
            elif kind == "script_finished":
                result.finished_status = msg.script_finished
                if msg.script_finished == ForwardMsg.FINISHED_WITH_COMPILE_ERROR:
                    break
    for u in dict.fromkeys(media):  # the page's other images, fetched as the browser does
        await fetch_media(base_url, u, result, timeout)
    result.finished_s = time.monotonic() - start
    return result


async def visit_all(base_url: str, path: str, students: int, timeout: float) -> list[Visit]:
    """``students`` first visits of ``path`` at once (each its own websocket session)."""
    return list(await asyncio.wait_for(
        asyncio.gather(*(visit(base_url, path, timeout) for _ in range(students))), timeout))
