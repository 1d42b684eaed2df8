"""A class at once: N students open /traversal on one fresh server, then all move a slider.

Two kinds of students (``--clients``):

- ``browser`` (the default): one context of the system Chromium per student, as separate
  browsers would be. On one machine the N browsers take most of the CPU (30 of them ~94% on
  2 cores), which a class does not share: each student's browser runs on their own machine.
- ``protocol``: N students without a browser (tests/e2e/protocol_client.py) that send what a
  browser's visit sends - the page's HTML, ``/_stcore/health``, ``/_stcore/host-config``, the
  websocket ``/_stcore/stream`` and its ``rerun_script`` frames, the page's ``/media`` images -
  pinned against streamlit 1.67 and a captured Chromium visit. They cost a fraction of a CPU,
  so the figures are the shared server's. ``both``: protocol, then browser, each on a fresh server.

What it does (the real path: ``streamlit run app.py``):

1. starts a fresh server over copies of the demo runs (nothing in checkpoints/ is touched);
2. opens ``/traversal?run=<run>`` for N students at once and records, per student, the time
   from its first request until the picture decoded from the sliders is drawn (browser) or its
   element has arrived (protocol: the decoder's iframe, whose weights the browser decodes);
   the figure is the time until *every* student has one (the issue's goal: within 30 s for
   30 students); beside it: when the server had sent every student's page (``$AELAB_TIMING``:
   the end of its last script run) and the CPU seconds the server and the students used
   meanwhile;
3. then ``--rounds`` times, every student moves a slider at once, beside the same measured for
   one student alone on the same warm server first (the baseline of the ratio), reported as
   median and p95. Browser: the right arrow on the picture's first slider, until the frame
   showing the new picture (decoded and drawn in the browser by the page's component; goal:
   p95 under 300 ms). Protocol: those sliders never reach the server, so the students move
   the traversal grid's Steps slider instead, a rerun of the page on the server, until the run
   finished and the new grid's images are fetched;
4. (browser) one student then goes through every page of app.py in the sidebar twice; the time
   per switch (title shown and the app idle) of both rounds is reported (goal: any switch under
   1.5 s); ``--pages-only`` does only this, after one student opened /traversal.

``--page challenge``: the class challenge instead (protocol students). A challenge (digits,
ae, code size 4, 1 epoch, lowest test MSE) with ``--entries`` real entries (prepared as the
Challenge page does, trained and scored by a separate process running what a run's worker runs:
``train_run``, then ``rebuild_eval``, the evaluation every page shows) is made before the server
starts; then

2'. N students open ``/challenge?id=<id>`` at once: the time until every student has the
   leaderboard (its table has arrived) and the server's CPU seconds per student's first visit;
3'. one more entry is trained and scored while every student's leaderboard refreshes on its own
   timer (the fragment's ``run_every``, each student at a random phase, as browsers opened at
   different moments): the time from its score being written until every student's table shows
   it, and the server's CPU seconds per refresh meanwhile.

The server holds a copy of every shipped demo run (as a class's server does), never
checkpoints/ itself.

    python bench/classroom_load.py                  # 30 browser students, 3 rounds
    python bench/classroom_load.py --clients protocol --students 30
    python bench/classroom_load.py --clients both --students 30 --timeout 240
    python bench/classroom_load.py --students 10 --rounds 5 --json
    python bench/classroom_load.py --pages-only     # every page switch, one student
    python bench/classroom_load.py --page challenge --students 30   # the challenge's leaderboard

Timings are wall clock on whatever else the machine does; with browser students the server,
the browser and its N renderers share the same cores, so on a 2-core machine the browser side
is a large part of what is measured. Say the machine and its load beside any figure.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the repo's aelab, not an installed one
sys.path.insert(0, str(ROOT / "tests" / "e2e"))  # appserver: start/stop the app, the system Chromium
from appserver import DECODED, DECODER_WINDOW_JS  # noqa: E402

# The picture decoded from the sliders is drawn by the page's component (webdecoder.js, a
# same-origin iframe titled DECODED): its window.aelab counts draws and notes the page time
# of the frame after each (``paintedAt``, a requestAnimationFrame after the canvas is drawn).
# true once the component has drawn its first picture
PICTURE_JS = f"""() => {{ const w = ({DECODER_WINDOW_JS})(); return !!(w && w.aelab.paintedAt !== null); }}"""
# before a key press: note the component's draw count and the press time, in its page time
WATCH_JS = f"""() => {{
  const w = ({DECODER_WINDOW_JS})();
  w.__draws = w.aelab.draws; w.__pressed = w.performance.now();
}}"""
# ms from the press until the frame that shows the new picture, or null while not yet
CHANGED_JS = f"""() => {{
  const w = ({DECODER_WINDOW_JS})(), a = w.aelab;
  return a.draws > w.__draws && a.paintedAt >= a.drawnAt ? a.paintedAt - w.__pressed : null;
}}"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def process_tree(root: int) -> set[int]:
    """``root`` and every process below it (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, todo = set(), [root]
    while todo:
        pid = todo.pop()
        tree.add(pid)
        todo += children.get(pid, [])
    return tree


def cpu_seconds(pids: set[int]) -> float:
    """User + system CPU seconds the processes ``pids`` have used so far."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15 of stat)
    return total / os.sysconf("SC_CLK_TCK")


def cpu_split(server_pid: int) -> dict[str, float]:
    """CPU seconds used so far by the server and by the browsers (this script's other
    child processes: Playwright's driver and Chromium)."""
    server = process_tree(server_pid)
    return {"server": cpu_seconds(server), "browsers": cpu_seconds(process_tree(os.getpid()) - server
                                                                   - {os.getpid()})}


def open_all(pages, url: str, timeout: float) -> list[float]:
    """Seconds from the start until each page shows the decoded picture."""
    start = time.monotonic()
    for page in pages:
        page.goto(url, wait_until="commit")
    done: dict[int, float] = {}
    while len(done) < len(pages):
        for i, page in enumerate(pages):
            if i not in done and page.evaluate(PICTURE_JS):
                done[i] = time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise SystemExit(f"only {len(done)} of {len(pages)} students saw a picture in {timeout:.0f} s")
        time.sleep(0.02)
    return [done[i] for i in range(len(pages))]


def nudge_all(pages, timeout: float) -> list[float]:
    """Every page presses the right arrow on its first slider; ms until each new picture."""
    from appserver import wait_idle

    for page in pages:  # every script run finished: the presses meet an idle app
        wait_idle(page, timeout * 1000)
        page.frame_locator(f'iframe[title="{DECODED}"]').get_by_role("slider").first.focus()
    for page in pages:
        page.evaluate(WATCH_JS)
        page.keyboard.press("ArrowRight")
    waits: dict[int, float] = {}
    start = time.monotonic()
    while len(waits) < len(pages):
        for i, page in enumerate(pages):
            if i not in waits:
                t = page.evaluate(CHANGED_JS)
                if t is not None:
                    waits[i] = t
        if time.monotonic() - start > timeout:
            raise SystemExit(f"only {len(waits)} of {len(pages)} pictures changed in {timeout:.0f} s")
        time.sleep(0.01)
    return [waits[i] for i in range(len(pages))]


def app_pages() -> list[tuple[str, str]]:
    """(sidebar name, page title) of every page of app.py, in its order: every page is timed."""
    pages = []
    for path, name in re.findall(r'st\.Page\("([^"]+)", title="([^"]+)"', (ROOT / "app.py").read_text()):
        title = re.search(r'st\.title\("([^"]+)"\)', (ROOT / path).read_text())
        pages.append((name, title.group(1) if title else name))
    return pages


def script_times(log_path: Path, offset: int) -> tuple[int, list[float]]:
    """The server's script times (s) logged since byte ``offset`` (``$AELAB_TIMING``), and
    the new offset."""
    with open(log_path, "rb") as log:
        log.seek(offset)
        text = log.read().decode(errors="replace")
    return offset + len(text.encode()), [float(t) for t in re.findall(r"aelab-timing page=\S+ script_s=([\d.]+)", text)]


def server_done_s(log_path: Path, start: float, page: str) -> float | None:
    """Seconds from ``start`` (unix time) until the server had finished its last run of
    ``page`` (called once every student's app is idle: every page sent, whatever the
    browsers then took to draw it)."""
    ends = [float(t) for t in re.findall(rf"aelab-timing page={page} script_s=[\d.]+ end=([\d.]+)",
                                         log_path.read_text(errors="replace"))]
    return round(max(ends) - start, 2) if ends else None


def switch_pages(page, timeout_ms: float, log_path: Path) -> dict[str, dict]:
    """Per page, the seconds of a switch through the sidebar until the page's title shows
    and the app is idle (one student, warm server: the issue's "any page switch under
    1.5 s"), beside the server's script time for it (the rest is transport and drawing)."""
    from appserver import wait_idle

    times = {}
    wait_idle(page, timeout_ms)  # the runs before (opening /traversal) are not counted
    time.sleep(0.05)
    offset = log_path.stat().st_size
    for name, title in app_pages():
        start = time.monotonic()
        page.get_by_test_id("stSidebarNav").get_by_role("link", name=name, exact=True).click()
        page.get_by_role("heading", name=title, exact=True).wait_for(timeout=timeout_ms)
        wait_idle(page, timeout_ms)
        switch = time.monotonic() - start
        time.sleep(0.05)  # the server's line follows the last message it sent
        offset, scripts = script_times(log_path, offset)
        times[name] = {"switch_s": round(switch, 2), "script_s": round(sum(scripts), 3),
                       "script_runs": len(scripts)}
    return times


GRID_SLIDER = "slider:Steps"  # the Traversal grid's slider: a server rerun (the picture's own decode in the browser)


def browser_class(server, log: Path, args) -> dict:
    """Steps 2-4 with N browser contexts of the system Chromium."""
    from appserver import launch_chromium, wait_idle
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            server.wait_healthy(120)
            url = f"{server.url}/traversal?run={args.run}"
            students = 1 if args.pages_only else args.students
            contexts = [browser.new_context(viewport={"width": 1280, "height": 900})
                        for _ in range(students)]
            pages = [c.new_page() for c in contexts]
            before, opening = cpu_split(server.process.pid), time.time()
            opened = open_all(pages, url, args.timeout)  # a fresh server: the cold path
            for page in pages:
                wait_idle(page, args.timeout * 1000)
            served = server_done_s(log, opening, "traversal")
            after = cpu_split(server.process.pid)
            alone, together = [], []
            for _ in range(0 if args.pages_only else args.rounds):  # one student alone: baseline
                alone += nudge_all(pages[:1], args.timeout)
                time.sleep(0.3)
            for _ in range(0 if args.pages_only else args.rounds):
                together += nudge_all(pages, args.timeout)
                time.sleep(0.5)
            for extra in pages[1:]:  # the others leave: one student switches pages alone
                extra.close()
            first_visits = switch_pages(pages[0], args.timeout * 1000, log)  # caches warm up
            switches = switch_pages(pages[0], args.timeout * 1000, log)
        finally:
            browser.close()
    return {"students": students, "opened": opened, "served": served, "alone": alone, "together": together,
            "open_cpu_s": {k: round(after[k] - before[k], 1) for k in after},
            "page_switch_first_visit_s": first_visits, "page_switch_s": switches}


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def protocol_class(server, log: Path, args) -> dict:
    """Steps 2-3 with N protocol students (tests/e2e/protocol_client.py: a browser's requests
    and websocket frames, no browser): what the shared server does for a class. Their slider
    rounds move the grid's Steps slider, a rerun of the page on the server."""
    import asyncio

    from protocol_client import Student, nudge_all, open_all

    async def lesson() -> dict:
        students = [Student(server.url, args.timeout, assets=not args.no_assets) for _ in range(args.students)]
        try:
            before, own, opening = cpu_split(server.process.pid)["server"], own_cpu_seconds(), time.time()
            opened = await open_all(students, f"/traversal?run={args.run}", args.timeout)
            served = server_done_s(log, opening, "traversal")
            cpu = {"server": round(cpu_split(server.process.pid)["server"] - before, 1),
                   "protocol_students": round(own_cpu_seconds() - own, 1)}
            alone, together = [], []
            for _ in range(args.rounds):  # one student alone: the baseline
                alone += await nudge_all(students[:1], GRID_SLIDER, args.timeout)
                await asyncio.sleep(0.3)
            for _ in range(args.rounds):
                together += await nudge_all(students, GRID_SLIDER, args.timeout)
                await asyncio.sleep(0.5)
        finally:
            for student in students:
                await student.close()
        failed = [v for v in opened + alone + together if v.exceptions or v.finished_status != 0]
        if failed:
            raise SystemExit(f"{len(failed)} page run(s) failed: {failed[0]}\n{server.log_tail()}")
        if any(v.picture_s is None for v in opened):
            raise SystemExit("a protocol student got no Traversal picture")
        return {"students": args.students, "opened": [v.picture_s for v in opened],
                "page_done_s": round(max(v.finished_s for v in opened), 2), "served": served,
                "alone": [v.finished_s * 1000 for v in alone],
                "together": [v.finished_s * 1000 for v in together], "open_cpu_s": cpu}

    server.wait_healthy(120)
    return asyncio.run(lesson())


def record_assets(args) -> int:
    """Write the frontend files one Chromium first visit of /traversal loads, for the protocol
    students to load the same (tests/e2e/traversal_assets.txt)."""
    from appserver import AppServer, copy_demo_runs, decoder_frame, launch_chromium, wait_idle
    from playwright.sync_api import sync_playwright
    from protocol_client import RECORDED_ASSETS

    with tempfile.TemporaryDirectory() as folder, sync_playwright() as playwright:
        copy_demo_runs(Path(folder) / "runs", [args.run])
        server = AppServer(Path(folder) / "runs", log_path=Path(folder) / "server.log").start()
        browser = launch_chromium(playwright)
        try:
            server.wait_healthy(120)
            page, files = browser.new_page(), []
            page.on("request", lambda r: files.append(r.url.removeprefix(server.url)))
            page.goto(f"{server.url}/traversal?run={args.run}")
            decoder_frame(page, args.timeout * 1000)  # the picture drawn, then everything else
            wait_idle(page, args.timeout * 1000)
        finally:
            browser.close()
            server.stop()
    files = list(dict.fromkeys(f for f in files if f.startswith("/static/")))
    RECORDED_ASSETS.write_text("".join(f"{f}\n" for f in files))
    print(f"{len(files)} frontend files of a first visit of /traversal -> {RECORDED_ASSETS}")
    return 0


CHALLENGE = {"name": "Smallest error at code size 4", "datasets": ["digits"], "variants": ["ae"],
             "latent_dim": 4, "epochs": 1, "max_minutes": 0.0, "goal": "test_mse"}


def make_entry(runs: str, challenge_id: str, student: str, seed: int) -> None:
    """One challenge entry, as the Challenge page starts it and its worker finishes it: the
    run folder (its owner and challenge in config.json), training, then the evaluation that
    scores it (``eval.json``)."""
    from aelab.metrics.results import rebuild_eval
    from aelab.runs import challenges
    from aelab.runs.train import train_run
    from aelab.training.setup import prepare_run

    challenge = challenges.load(runs, challenge_id)
    model, train = {"latent_dim": challenge.latent_dim}, {**challenges.locked_train(challenge), "seed": seed,
                                                          "device": "cpu"}
    challenges.check_entry(challenge, "ae", "digits", model, train)
    run_dir = prepare_run("ae", "digits", model, train, runs_dir=runs,
                          meta={"owner": student, "challenge": challenge_id})
    if train_run(run_dir)["state"] != "done":
        raise SystemExit(f"the entry {run_dir.name} did not finish")
    rebuild_eval(run_dir)


def entry_process(runs: Path, challenge_id: str, student: str, seed: int) -> list[str]:
    """The command that makes one entry in a process of its own (a run's worker is one)."""
    return [sys.executable, __file__, "--make-entry", str(runs), challenge_id, student, str(seed)]


def challenge_class(server, log: Path, args, runs: Path, challenge_id: str) -> dict:
    """Steps 2'-3': N protocol students on the challenge's page, then a new entry while their
    leaderboards refresh."""
    import asyncio
    import random

    from protocol_client import Student, open_all

    async def lesson() -> dict:
        students = [Student(server.url, args.timeout, assets=not args.no_assets) for _ in range(args.students)]
        try:
            before, opening = cpu_split(server.process.pid)["server"], time.time()
            opened = await open_all(students, f"/challenge?id={challenge_id}", args.timeout)
            served = server_done_s(log, opening, "challenge")
            first_cpu = cpu_split(server.process.pid)["server"] - before
            failed = [v for v in opened if v.exceptions or v.finished_status != 0]
            if failed:
                raise SystemExit(f"{len(failed)} page run(s) failed: {failed[0]}\n{server.log_tail()}")
            if any(v.table_s is None or [ranked(t) for t in v.tables] != [args.entries] for v in opened):
                raise SystemExit(f"a student got no leaderboard of {args.entries} entries: {opened[0]}")
            pictures = [p for v in opened for p in v.tables[0].column("reconstructions").to_pylist()]
            if not all(str(p).startswith("data:image/png;base64,") for p in pictures):
                raise SystemExit("a leaderboard row came without its thumbnail")
            fragments = {f for s in students for f in s.auto_reruns}
            if len(fragments) != 1:
                raise SystemExit(f"expected the leaderboard's one timed fragment, got {fragments}")
            (fragment,) = fragments
            interval = students[0].auto_reruns[fragment]
            scored_at: list[float] = []
            seen: dict[int, float] = {}
            refreshes = [0]

            async def watch(i: int, student) -> None:  # a browser's timer, at its own phase
                await asyncio.sleep(random.uniform(0, interval))
                while i not in seen:
                    visit = await student.refresh(fragment)
                    refreshes[0] += 1
                    if visit.exceptions:
                        raise SystemExit(f"a leaderboard refresh failed: {visit.exceptions}")
                    if scored_at and [ranked(t) for t in visit.tables] == [args.entries + 1]:
                        seen[i] = time.monotonic() - scored_at[0]
                        return
                    await asyncio.sleep(interval)

            cpu_before = cpu_split(server.process.pid)["server"]
            watchers = [asyncio.create_task(watch(i, s)) for i, s in enumerate(students)]
            entry = await asyncio.create_subprocess_exec(*entry_process(runs, challenge_id, "Late student", 99))
            if await entry.wait() != 0:
                raise SystemExit("the late entry could not be made")
            scored_at.append(time.monotonic())
            await asyncio.wait_for(asyncio.gather(*watchers), args.timeout)
            live_cpu = cpu_split(server.process.pid)["server"] - cpu_before
        finally:
            for student in students:
                await student.close()
        return {"students": args.students, "entries": args.entries,
                "opened": [v.table_s for v in opened], "page_done_s": round(max(v.finished_s for v in opened), 2),
                "served": served, "open_cpu_s": {"server": round(first_cpu, 1)},
                "server_cpu_per_first_visit_s": round(first_cpu / args.students, 3),
                "refresh_every_s": interval, "refreshes": refreshes[0],
                "server_cpu_per_refresh_s": round(live_cpu / max(1, refreshes[0]), 3),
                "new_entry_seen_s": {"median": round(statistics.median(seen.values()), 2),
                                     "all": round(max(seen.values()), 2)}}

    server.wait_healthy(120)
    return asyncio.run(lesson())


def ranked(table) -> int:
    """How many rows of a leaderboard (a pyarrow Table) have a rank: the scored entries."""
    return sum(1 for v in table.column("rank").to_pylist() if str(v).isdigit())


def setup_challenge(runs: Path, entries: int) -> str:
    """The challenge and its first ``entries`` entries, each made by a process of its own."""
    import subprocess

    from aelab.runs import challenges

    made = challenges.create(runs, **CHALLENGE)
    for i in range(entries):
        subprocess.run(entry_process(runs, made.id, f"Student {i + 1}", i), check=True)
    return made.id


def one_class(clients: str, args) -> dict:
    """A fresh server over copies of the demo runs, a class of ``clients`` on it; the figures."""
    from appserver import DEMO_RUNS, AppServer, copy_demo_runs

    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        # every shipped demo run, as a class's server has them (the Runs page lists them all)
        copy_demo_runs(folder / "runs", sorted({args.run} | {p.parent.name for p in
                                                              DEMO_RUNS.glob("demo-*/status.json")}))
        challenge_id = setup_challenge(folder / "runs", args.entries) if args.page == "challenge" else None
        load_before = os.getloadavg()[0]
        os.environ["AELAB_TIMING"] = "1"  # the server logs each page's script time
        server = AppServer(folder / "runs", log_path=folder / "server.log",
                           threads=os.environ.get("AELAB_THREADS", "1")).start()
        try:
            if challenge_id:
                run = challenge_class(server, folder / "server.log", args, folder / "runs", challenge_id)
            else:
                run = (browser_class if clients == "browser" else protocol_class)(server, folder / "server.log", args)
        finally:
            server.stop()
    if challenge_id:
        opened = run.pop("opened")
        return {"clients": clients, "page": "challenge", "cores": os.cpu_count(),
                "load_avg_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
                "all_see_the_leaderboard_s": round(max(opened), 2), "first_leaderboard_s": round(min(opened), 2),
                "server_done_s": run.pop("served"), **run}
    opened, alone, together = run.pop("opened"), run.pop("alone"), run.pop("together")
    result = {"clients": clients, "students": run.pop("students"),
              "rounds": len(together) // max(1, len(opened)),
              "cores": os.cpu_count(), "load_avg_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
              "all_see_a_picture_s": round(max(opened), 2), "first_picture_s": round(min(opened), 2),
              "server_done_s": run.pop("served"), **run}
    if alone:
        result["slider_alone_ms"] = {"median": round(statistics.median(alone)),
                                     "p95": round(percentile(alone, 0.95))}
        result["slider_together_ms"] = {"median": round(statistics.median(together)),
                                        "p95": round(percentile(together, 0.95))}
        result["p95_together_over_alone"] = round(result["slider_together_ms"]["p95"]
                                                  / max(1, result["slider_alone_ms"]["p95"]), 1)
    return result


def report(r: dict) -> None:
    """The figures of one class, labelled with the kind of students."""
    load = f"{r['cores']} cores, load average {r['load_avg_1min'][0]:.1f} before, {r['load_avg_1min'][1]:.1f} after"
    cpu = r["open_cpu_s"]
    if r.get("page") == "challenge":
        print(f"[protocol students, challenge] {r['students']} on {load}: all had the leaderboard "
              f"({r['entries']} entries, thumbnails) after {r['all_see_the_leaderboard_s']} s (first "
              f"{r['first_leaderboard_s']} s), the whole page after {r['page_done_s']} s; the server "
              f"had sent every page after {r['server_done_s']} s; server CPU {cpu['server']} s, "
              f"{r['server_cpu_per_first_visit_s']} s per student's first visit (goal < 1 s)")
        print(f"[protocol students, challenge] a new entry scored -> on every student's leaderboard "
              f"(refreshed every {r['refresh_every_s']:g} s, each at its own phase) after "
              f"{r['new_entry_seen_s']['all']} s (median {r['new_entry_seen_s']['median']} s); "
              f"{r['refreshes']} refreshes, {r['server_cpu_per_refresh_s']} server CPU-s each")
        return
    if r["clients"] == "protocol":
        print(f"[protocol students: Streamlit's websocket protocol, no browser] {r['students']} on {load}: "
              f"all got the Traversal picture after {r['all_see_a_picture_s']} s (first "
              f"{r['first_picture_s']} s; goal: 30 students within 30 s), the whole page (script finished, "
              f"images fetched) after {r['page_done_s']} s; the server had sent every page after "
              f"{r['server_done_s']} s; CPU seconds meanwhile: server {cpu['server']}, the protocol "
              f"students {cpu['protocol_students']}")
        if "slider_alone_ms" in r:
            print(f"[protocol students] grid Steps slider -> page rerun finished and new grid fetched "
                  f"(a server rerun; the picture's own sliders decode in the browser): alone median "
                  f"{r['slider_alone_ms']['median']} ms, p95 {r['slider_alone_ms']['p95']} ms; all at once "
                  f"median {r['slider_together_ms']['median']} ms, p95 {r['slider_together_ms']['p95']} ms "
                  f"(together/alone p95 x{r['p95_together_over_alone']})")
        return
    print(f"[browser students: Chromium contexts on this machine] {r['students']} on {load}: all saw a "
          f"picture after {r['all_see_a_picture_s']} s (first {r['first_picture_s']} s; goal: 30 students "
          f"within 30 s); the server had sent every page after {r['server_done_s']} s; CPU seconds "
          f"meanwhile: server {cpu['server']}, browsers {cpu['browsers']}")
    if "slider_alone_ms" in r:
        print(f"[browser students] slider -> new picture: alone median {r['slider_alone_ms']['median']} ms, "
              f"p95 {r['slider_alone_ms']['p95']} ms; all at once median "
              f"{r['slider_together_ms']['median']} ms, p95 {r['slider_together_ms']['p95']} ms "
              f"(goal p95 < 300 ms; together/alone p95 x{r['p95_together_over_alone']})")
    for what, times in (("first visit", r["page_switch_first_visit_s"]), ("second visit", r["page_switch_s"])):
        print(f"[browser students] page switch, one student, {what}, in the browser (server script) s: "
              + ", ".join(f"{k} {v['switch_s']} ({v['script_s']})" for k, v in times.items())
              + f"; slowest {max(v['switch_s'] for v in times.values())} s (goal < 1.5 s)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=30, help="students at once (default 30)")
    parser.add_argument("--rounds", type=int, default=3, help="slider moves by everybody at once")
    parser.add_argument("--clients", choices=("browser", "protocol", "both"), default="browser",
                        help="browser: Chromium contexts (default); protocol: Streamlit's websocket "
                             "protocol without a browser, the server's share alone; both: protocol, "
                             "then browser, each on a fresh server")
    parser.add_argument("--run", default="demo-vae", help="the demo run the students open")
    parser.add_argument("--page", choices=("traversal", "challenge"), default="traversal",
                        help="traversal (default), or challenge: the class challenge's page and leaderboard "
                             "(protocol students)")
    parser.add_argument("--entries", type=int, default=3, help="--page challenge: entries made before the class")
    parser.add_argument("--make-entry", nargs=4, metavar=("RUNS", "CHALLENGE", "STUDENT", "SEED"),
                        help=argparse.SUPPRESS)  # one entry, in a process of its own
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--pages-only", action="store_true",
                        help="only step 4: one student times every page switch (no class; browser)")
    parser.add_argument("--no-assets", action="store_true",
                        help="protocol students load no frontend files (browsers that cached them)")
    parser.add_argument("--record-assets", action="store_true",
                        help="record the frontend files a Chromium first visit loads, for the "
                             "protocol students (after a streamlit upgrade)")
    parser.add_argument("--json", action="store_true", help="print one JSON object (a list with --clients both)")
    args = parser.parse_args(argv)
    if args.make_entry:
        runs, challenge_id, student, seed = args.make_entry
        make_entry(runs, challenge_id, student, int(seed))
        return 0
    if args.page == "challenge":
        if args.pages_only or args.entries < 1:
            print("--page challenge takes no --pages-only and at least 1 --entries", file=sys.stderr)
            return 2
        args.clients = "protocol"
    if args.record_assets:
        return record_assets(args)
    if args.students < 1 or args.rounds < 1:
        print("--students and --rounds must be at least 1", file=sys.stderr)
        return 2
    kinds = ["browser"] if args.pages_only else (["protocol", "browser"] if args.clients == "both"
                                                   else [args.clients])
    from appserver import missing_browser

    reason = missing_browser() if "browser" in kinds else None
    if reason:
        print(f"classroom_load needs the browser: {reason} (or use --clients protocol)", file=sys.stderr)
        return 2
    results = []
    for kind in kinds:
        results.append(one_class(kind, args))
        if not args.json:
            report(results[-1])
    if args.json:
        print(json.dumps(results if len(results) > 1 else results[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
