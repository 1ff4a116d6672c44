"""A real Streamlit server and a real headless Chromium for end-to-end tests, and screenshots of
every page a test visits (``GLOVEWATCH_SCREENSHOTS``, default: the test's ``tmp_path``)."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT

CHROMIUM = os.environ.get("GLOVEWATCH_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1400, "height": 1000}


@dataclass(frozen=True)
class App:
    url: str
    home: Path

    def store(self) -> Any:
        """The app's store, read from the test process."""
        from core.storage import open_store

        return open_store(str(self.home / "glovewatch.sqlite"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def app_server(tmp_path):
    """``streamlit run Home.py`` on a free loopback port with its own data folder
    (``tmp_path / "gw-home"``, the folder the ``gw_home``-based fixtures fill: request those
    first to start the app on their data)."""
    port = _free_port()
    home = tmp_path / "gw-home"
    env = dict(os.environ, GLOVEWATCH_HOME=str(home))
    env.pop("GLOVEWATCH_DB_URL", None)
    log = open(tmp_path / "streamlit.log", "w")  # noqa: SIM115  (closed after the server)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(ROOT / "Home.py"),
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
            "--server.headless",
            "true",
            "--browser.gatherUsageStats",
            "false",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).status == 200:
                break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("streamlit did not start: " + (tmp_path / "streamlit.log").read_text())
    yield App(url, home)
    # The whole process group: a child forked by the server (seen after WebRTC sessions)
    # would otherwise outlive the test.
    os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=15)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    log.close()
    from core.storage import _STORES, close_store

    for store in [s for url, s in list(_STORES.items()) if str(home) in url]:
        close_store(store)


def launch_chromium(playwright, extra_args: list[str] | None = None):
    """Debian's Chromium, headless, with every background network feature off."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: apt-get install chromium")
    return playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS + (extra_args or [])
    )


@pytest.fixture
def browser_page(app_server):
    """A Chromium page (1400x1000) on a fresh browser; closed after the test."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport=VIEWPORT)
        yield page
        browser.close()


def settle(page: Any, timeout_s: float = 90) -> None:
    """Wait until the app has finished running the script (twice in a row, 300 ms apart: a
    rerun may follow at once)."""
    done = "[data-testid='stApp'][data-test-script-state='notRunning']"
    deadline = time.time() + timeout_s
    calm = 0
    page.wait_for_timeout(200)
    while calm < 2 and time.time() < deadline:
        calm = calm + 1 if page.locator(done).count() else 0
        page.wait_for_timeout(300)


class Screenshots:
    """Full-page screenshots, numbered in the order taken: ``<test>-NN-<what>.png``."""

    def __init__(self, folder: Path, test: str) -> None:
        self.folder = folder
        self.test = re.sub(r"[^A-Za-z0-9_.-]+", "-", test)[:80]
        self.taken: list[Path] = []
        folder.mkdir(parents=True, exist_ok=True)

    def __call__(self, page: Any, what: str) -> Path:
        """Screenshot the whole app, including what its scrolling main area hides."""
        path = self.folder / f"{self.test}-{len(self.taken) + 1:02d}-{what}.png"
        size = page.viewport_size or VIEWPORT
        tall = size["height"]
        for _ in range(5):  # images load and charts redraw at the new size: measure again
            height = page.evaluate(
                """() => {
                    const parts = ["[data-testid='stMain']", "[data-testid='stSidebarContent']"]
                        .map(q => document.querySelector(q)).filter(Boolean);
                    return Math.max(document.documentElement.scrollHeight,
                                    ...parts.map(e => e.scrollHeight));
                }"""
            )
            wanted = min(max(int(height), size["height"]), 10000)
            if wanted <= tall:
                break
            tall = wanted
            page.set_viewport_size({"width": size["width"], "height": tall})
            page.wait_for_timeout(600)
        page.screenshot(path=str(path), full_page=True)
        page.set_viewport_size(size)
        self.taken.append(path)
        return path


@pytest.fixture
def shots(request, tmp_path) -> Screenshots:
    """Where a browser test saves a full-page screenshot of each page it visits."""
    folder = Path(os.environ.get("GLOVEWATCH_SCREENSHOTS") or tmp_path / "screenshots")
    return Screenshots(folder, request.node.name)


def goto(page: Any, app: App, path: str, heading: str) -> None:
    """Open a page of the app by its URL and wait for ``heading`` and the end of the run."""
    page.goto(f"{app.url}/{path}", wait_until="domcontentloaded")
    page.get_by_text(heading, exact=True).first.wait_for(timeout=90_000)
    settle(page)


def nav(page: Any, name: str, heading: str) -> None:
    """Go to another page through the sidebar (the same session: a sign-in holds)."""
    page.locator("[data-testid='stSidebar'] a", has_text=name).first.click()
    page.get_by_text(heading, exact=True).first.wait_for(timeout=90_000)
    settle(page)


def choose(page: Any, label: str, option: str) -> None:
    """Pick ``option`` in the selectbox labelled ``label``."""
    box = page.locator("[data-testid='stSelectbox']", has_text=label).first
    wanted = page.get_by_role("option", name=option, exact=True)
    for _ in range(5):  # a rerun may redraw the box while it opens
        settle(page)
        box.locator("[role='combobox']").click()
        page.keyboard.press("ArrowDown")  # opens the list
        try:
            wanted.wait_for(timeout=5_000)
        except Exception:  # not open yet: try again
            page.keyboard.press("Escape")
            continue
        wanted.click()
        break
    settle(page)
    assert box.locator("[role='combobox']").input_value() == option


def metric(page: Any, label: str) -> str:
    """The value shown by the metric labelled ``label``."""
    box = page.locator("[data-testid='stMetric']", has_text=label).first
    return box.locator("[data-testid='stMetricValue']").inner_text().strip()
