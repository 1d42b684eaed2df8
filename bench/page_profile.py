"""Where a page's script run spends its time: cProfile of one warm rerun of each page.

``streamlit.testing.v1.AppTest`` runs app.py switched to each page (over the runs folder,
default checkpoints/ with the demo runs), ``--warm`` times to fill the caches, then once
more under cProfile (started inside the script thread, around the page's own run); prints
the wall time of every run and the top functions by cumulative time of the profiled one.
The server's script time only: the browser's drawing is not included.

    python bench/page_profile.py                         # every page, top 25 functions
    python bench/page_profile.py runs latent --top 40    # some pages
    python bench/page_profile.py --warm 0 traversal      # the cold first run profiled
"""
from __future__ import annotations

import argparse
import cProfile
import io
import logging
import os
import pstats
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the repo's aelab, not an installed one


def profile_page(page: str, warm: int, top: int) -> None:
    from streamlit.navigation.page import StreamlitPage
    from streamlit.testing.v1 import AppTest

    profiles = []
    plain_run = StreamlitPage.run

    def profiled_run(self):
        if not profiles or profiles[-1] is None:
            return plain_run(self)
        with profiles[-1]:  # inside the script thread: what the page itself does
            return plain_run(self)

    StreamlitPage.run = profiled_run
    try:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600)
        at.switch_page(f"pages/{page}.py")
        times = []
        for i in range(warm + 1):
            profiles.append(cProfile.Profile() if i == warm else None)
            start = time.perf_counter()
            at.run()
            times.append(time.perf_counter() - start)
            if at.exception:
                raise SystemExit(f"{page}: the page raised {at.exception[0].value}")
    finally:
        StreamlitPage.run = plain_run
    print(f"== {page}: runs " + ", ".join(f"{t:.2f}" for t in times) + " s (the last profiled)")
    out = io.StringIO()
    pstats.Stats(profiles[-1], stream=out).sort_stats("cumulative").print_stats(top)
    print(out.getvalue().split("\n", 4)[-1].rstrip() + "\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    pages = sorted(re.findall(r'st\.Page\("pages/(\w+)\.py"', (ROOT / "app.py").read_text()))
    parser.add_argument("pages", nargs="*", help=f"pages to profile (default all: {' '.join(pages)})")
    parser.add_argument("--warm", type=int, default=2, help="runs before the profiled one")
    parser.add_argument("--top", type=int, default=25, help="functions shown per page")
    parser.add_argument("--runs-dir", default=str(ROOT / "checkpoints"), help="runs folder")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.pages) - set(pages))
    if unknown:
        print(f"no page {', '.join(unknown)}; the pages are {', '.join(pages)}", file=sys.stderr)
        return 2
    os.environ["AELAB_RUNS"] = str(Path(args.runs_dir).resolve())
    logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context").setLevel(logging.ERROR)
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    for page in args.pages or pages:
        profile_page(page, args.warm, args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
