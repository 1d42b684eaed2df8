"""What one page switch costs the browser and the server, in CPU seconds beside the wall time.

On a shared machine a page switch's wall time is mostly the CPU left over (the browser's
renderer waits for a core); the CPU seconds the browser and the server use for it change
much less with the load, so two versions of a page compare by them. One student (one
Chromium context) on a fresh server over copies of the shipped demo runs (checkpoints/ is
not touched) switches ``--rounds`` times from ``--via`` to ``--page`` through the sidebar;
each switch ends when the page's title shows and the app is idle (as in classroom_load.py).
The first switch to ``--page`` (the server's caches and the browser's code cold) is shown
apart from the warm ones.

    python bench/page_cpu.py                                 # Latent space, via Inside
    python bench/page_cpu.py --page Lesson --via Train --rounds 5
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))  # appserver: start/stop the app, the system Chromium
sys.path.insert(0, str(ROOT / "bench"))
from appserver import DEMO_RUNS, AppServer, copy_demo_runs, launch_chromium, missing_browser, wait_idle  # noqa: E402
from classroom_load import app_pages, cpu_split  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--page", default="Latent space", help="the sidebar name of the page timed")
    parser.add_argument("--via", default="Inside", help="the page switched from (a light one)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    titles = dict(app_pages())
    for name in (args.page, args.via):
        if name not in titles:
            print(f"no page {name!r} in the sidebar; pages: {', '.join(titles)}", file=sys.stderr)
            return 2
    if args.rounds < 1:
        print("--rounds must be at least 1", file=sys.stderr)
        return 2
    reason = missing_browser()
    if reason:
        print(f"page_cpu needs the browser: {reason}", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as folder, sync_playwright() as playwright:
        folder = Path(folder)
        copy_demo_runs(folder / "runs", sorted(p.parent.name for p in DEMO_RUNS.glob("demo-*/status.json")))
        server = AppServer(folder / "runs", log_path=folder / "server.log",
                           threads=os.environ.get("AELAB_THREADS", "1")).start()
        browser = launch_chromium(playwright)
        try:
            server.wait_healthy(120)
            page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
            page.goto(server.url)
            wait_idle(page, 300_000)
            rows = []
            for i in range(args.rounds + 1):  # the first round warms the server's caches up
                for name in (args.via, args.page):
                    before, start = cpu_split(server.process.pid), time.monotonic()
                    page.get_by_test_id("stSidebarNav").get_by_role("link", name=name, exact=True).click()
                    page.get_by_role("heading", name=titles[name], exact=True).wait_for(timeout=300_000)
                    wait_idle(page, 300_000)
                    wall, after = time.monotonic() - start, cpu_split(server.process.pid)
                    if name == args.page:
                        rows.append((wall, after["browsers"] - before["browsers"],
                                     after["server"] - before["server"]))
        finally:
            browser.close()
            server.stop()
    (wall, browser_s, server_s), rows = rows[0], rows[1:]
    print(f"{args.page} (from {args.via}) on {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}: first "
          f"visit wall {wall:.2f} s, browser CPU {browser_s:.2f} s, server CPU {server_s:.2f} s; "
          f"{args.rounds} warm switches: wall " + ", ".join(f"{w:.2f}" for w, _, _ in rows)
          + " s; browser CPU " + ", ".join(f"{b:.2f}" for _, b, _ in rows)
          + " s; server CPU " + ", ".join(f"{s:.2f}" for _, _, s in rows) + " s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
