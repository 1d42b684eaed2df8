"""Test-only helpers: start and stop ``streamlit run app.py`` and the system Chromium.

Used by tests/e2e/test_browser.py and bench/app_speed.py. Nothing here downloads a
browser: Playwright drives Debian's ``/usr/bin/chromium`` (``CHROMIUM``).
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("AELAB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


DEMO_RUNS = ROOT / "checkpoints"  # the shipped demo runs (finished, with their caches)


def copy_demo_runs(runs_dir, names) -> None:
    """Copy the shipped demo runs ``names`` into ``runs_dir``: the explore pages open on
    them without training or computing caches, and nothing in checkpoints/ is touched."""
    runs_dir = Path(runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    for name in names:
        source = DEMO_RUNS / name
        if not (source / "status.json").is_file():
            raise FileNotFoundError(f"no demo run {source}: run `python -m aelab demo-runs`")
        shutil.copytree(source, runs_dir / name)


def missing_browser() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as exc:
        return f"the Python package playwright is not installed ({exc}); pip install -r requirements.txt"
    if not os.access(CHROMIUM, os.X_OK):
        return (f"no Chromium at {CHROMIUM}; install the system package (apt-get install -y chromium) "
                f"- the tests never download a browser")
    return None


class Missing:
    """Stands for the browser when it cannot be started; ``require`` turns it into a failure."""

    def __init__(self, reason: str):
        self.reason = reason


def require(browser):
    """Fail the calling test when the browser is missing (under CI: elsewhere the browser
    fixture skips instead)."""
    import pytest

    if isinstance(browser, Missing):
        pytest.fail(f"CI=true but the browser tests cannot run: {browser.reason}", pytrace=False)
    return browser


def launch_chromium(playwright):
    """The system Chromium, headless, with the flags of DESIGN.md."""
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class AppServer:
    """``python -m streamlit run app.py`` on 127.0.0.1 with its own runs folder.

    ``start()`` returns at once (the clock of the launch starts there); ``wait_healthy()``
    polls ``/_stcore/health``; ``stop()`` ends the server by its pid and every run
    supervisor or worker process that works on ``runs_dir``.
    """

    def __init__(self, runs_dir, port: int | None = None, log_path=None, threads: str = "1",
                 env: dict | None = None):
        self.runs_dir = Path(runs_dir).resolve()
        self.env = dict(env or {})  # more environment of the server (pinned for screenshots)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(log_path or Path(tempfile.gettempdir()) / f"aelab-streamlit-{self.port}.log")
        self.threads = threads
        self.process: subprocess.Popen | None = None
        self.others: set[int] = set()  # run processes of runs_dir already alive: not ours to stop

    def start(self) -> "AppServer":
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        self.others = set(self.run_processes())
        env = {**os.environ, **self.env, "AELAB_RUNS": str(self.runs_dir),
               "AELAB_THREADS": self.threads, "PYTHONUNBUFFERED": "1"}
        command = [sys.executable, "-m", "streamlit", "run", "app.py",
                   "--server.address", "127.0.0.1", "--server.port", str(self.port),
                   "--server.headless", "true", "--browser.gatherUsageStats", "false"]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                                            stdout=log, stderr=subprocess.STDOUT)
        return self

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"

    def wait_healthy(self, timeout: float = 60.0) -> None:
        """Return once ``/_stcore/health`` answers ok; raise with the server's log otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"streamlit exited with status {self.process.returncode} before "
                                   f"serving:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as reply:
                    if reply.status == 200 and reply.read().strip() == b"ok":
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"streamlit did not answer {self.url}/_stcore/health within "
                                   f"{timeout:.0f} s:\n{self.log_tail()}")
            time.sleep(0.05)

    def run_processes(self) -> list[int]:
        """Pids of run supervisors and workers of this server's runs folder (but ``others``)."""
        patterns = (f"aelab supervise --runs-dir {self.runs_dir}", f"aelab worker {self.runs_dir}/")
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if any(p in cmdline for p in patterns) and int(entry.name) not in self.others:
                pids.append(int(entry.name))
        return pids

    def _signal_runs(self, sig) -> list[int]:
        pids = self.run_processes()
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        return pids

    def stop(self, grace: float = 5.0, run_grace: float = 2.0) -> None:
        """Stop the server and its runs' supervisor and workers: SIGTERM, then SIGKILL.

        A worker still building its run's caches after ``done`` only notes SIGTERM, so it
        is killed once ``run_grace`` is over (the runs folder is a throwaway one).
        """
        deadline = time.monotonic() + run_grace
        self._signal_runs(signal.SIGTERM)  # the supervisor first: it starts no new worker
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=grace)
        while self._signal_runs(signal.SIGTERM) and time.monotonic() < deadline:
            time.sleep(0.1)
        deadline = time.monotonic() + grace
        while self._signal_runs(signal.SIGKILL) and time.monotonic() < deadline:
            time.sleep(0.05)
        left = self.run_processes()
        if left:
            raise RuntimeError(f"run processes of {self.runs_dir} still alive: {left}")

    def __enter__(self) -> "AppServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def serve_app(browser, tmp_path_factory, demo_runs=(), env: dict | None = None):
    """Body of an ``app_server`` fixture (see conftest.py): ``streamlit run app.py`` on a free
    port with a fresh runs folder holding copies of the shipped ``demo_runs`` (none: empty)
    and ``env`` added to its environment; stopped at the end together with any run
    supervisor and worker it started."""
    if isinstance(browser, Missing):
        yield None
        return
    folder = tmp_path_factory.mktemp("e2e")
    copy_demo_runs(folder / "runs", demo_runs)
    server = AppServer(folder / "runs", log_path=folder / "streamlit.log", threads="1", env=env)
    server.start()
    try:
        server.wait_healthy(timeout=90)
        yield server
    finally:
        server.stop()


# --- in the browser ---
# True once Streamlit has finished and drawn: no script or fragment running, nothing greyed
# out as stale, no skeleton of a component still loading, every table's cells, chart and
# image drawn.
SETTLED_JS = """() => {
  const q = (s, root = document) => [...root.querySelectorAll(s)];
  const app = document.querySelector('[data-testid="stApp"]');
  if (!app || app.dataset.testScriptState === 'running') return false;
  if (q('[data-testid="stStatusWidget"], [data-testid="stSkeleton"], [data-stale="true"]').length) return false;
  if (q('[data-testid="stDataFrame"]').some(d => !d.querySelector('td'))) return false;
  if (q('[data-testid="stPlotlyChart"]').some(p => !p.querySelector('.main-svg'))) return false;
  return q('[data-testid="stImage"] img').every(i => i.complete && i.naturalWidth > 0);
}"""


DECODED = "decoded from the sliders"  # the Traversal component's title and its picture's caption
# the Traversal component's window (a same-origin srcdoc iframe), or null
DECODER_WINDOW_JS = f"""() => {{
  const frame = document.querySelector('iframe[title="{DECODED}"]');
  return frame && frame.contentWindow && frame.contentWindow.aelab ? frame.contentWindow : null;
}}"""


def decoder_frame(page, timeout: float = 60_000):
    """The Traversal page's sliders and picture (decoded in the browser, webdecoder.js) as a
    Playwright frame, once its picture is drawn and shown."""
    handle = page.wait_for_selector(f'iframe[title="{DECODED}"]', timeout=timeout)
    frame = handle.content_frame()
    frame.wait_for_function("() => window.aelab && window.aelab.paintedAt !== null", timeout=timeout)
    return frame


def is_settled(page) -> bool:
    return page.evaluate(SETTLED_JS)


def wait_idle(page, timeout: float = 60_000) -> None:
    """Wait until the script (and any fragment) has finished and the page is drawn."""
    page.wait_for_function(SETTLED_JS, timeout=timeout, polling="raf")


def full_page_screenshot(page, path, idle_timeout: float = 60_000, tries: int = 5) -> None:
    """Screenshot of the whole page once settled. Streamlit scrolls inside ``stMain``, not the
    document, so the viewport is made as tall as the content for the shot, then restored.
    A page whose fragments rerun every second is shot again if one started meanwhile."""
    size = page.viewport_size
    try:
        for _ in range(tries):
            wait_idle(page, idle_timeout)
            height = page.evaluate(
                "() => { const m = document.querySelector('[data-testid=\"stMain\"]');"
                " return Math.ceil(m ? m.scrollHeight : document.documentElement.scrollHeight); }")
            page.set_viewport_size({"width": size["width"], "height": max(size["height"], height)})
            page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
            wait_idle(page, idle_timeout)
            page.screenshot(path=str(path), full_page=True, animations="disabled")
            if is_settled(page):
                return
    finally:
        page.set_viewport_size(size)
