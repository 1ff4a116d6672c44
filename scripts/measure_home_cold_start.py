"""Home's cold start in a real browser: a fresh ``streamlit run Home.py`` (new process, new data
folder), then headless Chromium opens it; prints seconds from navigation to the title and to
the end of the first script run (every figure drawn), median of ``--runs`` fresh servers.

    .venv/bin/python scripts/measure_home_cold_start.py [--runs 3] [--restart]

``--restart`` keeps one data folder for all runs after a first, unmeasured visit (an app
restarted at a plant: the model summary is already known); without it every run gets a new,
empty data folder (the very first start). The server is started and its health endpoint
answered before the clock starts (the same way ``tests/e2e/conftest.py`` starts the app), so
the numbers are what a user waits for after opening the URL of an app just (re)started.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("GLOVEWATCH_CHROMIUM", "/usr/bin/chromium")
DONE = "[data-testid='stApp'][data-test-script-state='notRunning']"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _server(home: Path, port: int) -> subprocess.Popen[bytes]:
    env = dict(os.environ, GLOVEWATCH_HOME=str(home))
    env.pop("GLOVEWATCH_DB_URL", None)
    args = [sys.executable, "-m", "streamlit", "run", str(ROOT / "Home.py")]
    args += ["--server.port", str(port), "--server.address", "127.0.0.1"]
    args += ["--server.headless", "true", "--browser.gatherUsageStats", "false"]
    proc = subprocess.Popen(
        args,
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2):
                return proc
        except OSError:
            time.sleep(0.3)
    os.killpg(proc.pid, signal.SIGKILL)
    raise SystemExit("streamlit did not start")


def one_run(playwright: object, home: Path) -> dict[str, float]:
    """Seconds to the title and to a finished first run, on a freshly started server."""
    port = _free_port()
    proc = _server(home, port)
    try:
        browser = playwright.chromium.launch(  # type: ignore[attr-defined]
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        t0 = time.perf_counter()
        page.goto(f"http://127.0.0.1:{port}/", wait_until="domcontentloaded")
        page.get_by_text("🧤 GloveWatch", exact=True).wait_for(timeout=90_000)
        title = time.perf_counter() - t0
        # complete: the last section (the page links) drawn and the script finished
        page.locator("[data-testid='stPageLink']").last.wait_for(timeout=90_000)
        page.locator(DONE).wait_for(timeout=90_000)
        complete = time.perf_counter() - t0
        browser.close()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
    return {"title_s": round(title, 2), "complete_s": round(complete, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--restart", action="store_true", help="one data folder, visited once first")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p, tempfile.TemporaryDirectory(prefix="gw-cold-") as tmp:
        if args.restart:
            one_run(p, Path(tmp) / "home")  # the first visit ever: not measured
        runs = [
            one_run(p, Path(tmp) / ("home" if args.restart else f"home-{i}"))
            for i in range(args.runs)
        ]
    print(
        json.dumps(
            {
                "runs": runs,
                "median_title_s": statistics.median(r["title_s"] for r in runs),
                "median_complete_s": statistics.median(r["complete_s"] for r in runs),
                "restart": args.restart,
                "load": os.getloadavg(),
            }
        )
    )


if __name__ == "__main__":
    main()
