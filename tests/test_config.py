"""Configuration: importing GloveWatch changes nothing, and every entry point turns on the offline
environment and the safe weights loader before Ultralytics is imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.config import apply_offline_environment

ROOT = Path(__file__).resolve().parent.parent
OFFLINE = (
    "YOLO_OFFLINE",
    "YOLO_AUTOINSTALL",
    "YOLO_VERBOSE",
    "DO_NOT_TRACK",
    "HF_HUB_OFFLINE",
    "ULTRALYTICS_SAFE_LOAD",
    "YOLO_CONFIG_DIR",
)


def _run(code: str, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``code`` in a fresh interpreter whose environment holds none of the offline settings."""
    env = {k: v for k, v in os.environ.items() if k not in OFFLINE}
    env.update(GLOVEWATCH_HOME=str(home), PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_importing_core_and_every_core_module_sets_nothing_and_loads_no_ultralytics(tmp_path):
    """What makes "the entry point first" enough: ``import core`` alone changes nothing, and
    no module reaches Ultralytics on import (one interpreter for both)."""
    code = (
        "import importlib, json, os, pathlib, sys\n"
        "def changed(before):\n"
        "    return sorted(k for k in set(before) | set(os.environ)\n"
        "                  if before.get(k) != os.environ.get(k))\n"
        "bare = dict(os.environ)\n"
        "import core\n"
        "alone = {'changed': changed(bare), 'keys': sorted(os.environ)}\n"
        "import cv2  # OpenCV sets its own library paths on import: not ours\n"
        "before = dict(os.environ)\n"
        "names = ['.'.join(p.with_suffix('').parts).removesuffix('.__init__')\n"
        "         for p in sorted(pathlib.Path('core').rglob('*.py')) if p.stem != '__main__']\n"
        "for name in names:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps({'core alone': alone, 'modules': len(names),\n"
        "                  'changed': changed(before),\n"
        "                  'ultralytics': 'ultralytics' in sys.modules}))\n"
    )
    out = _run(code, tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    alone = res.pop("core alone")
    assert alone["changed"] == [], alone["changed"]
    assert not set(alone["keys"]) & set(OFFLINE)
    assert res["modules"] > 100
    assert res == {"modules": res["modules"], "changed": [], "ultralytics": False}


# Each entry point run in its own process, then what it left for Ultralytics to read.
ENTRY_POINTS = {
    # python -m core users list; then Ultralytics itself is imported and asked
    "cli": (
        "sys.argv = ['core', 'users', 'list']\n"
        "try:\n"
        "    runpy.run_module('core', run_name='__main__')\n"
        "except SystemExit as exc:\n"
        "    assert exc.code == 0, exc.code\n"
        "import ultralytics.utils as u\n"
        "assert u.SAFE_LOAD is True and u.is_online() is False\n"
    ),
    # python -m core.training.worker (no run given: it says how to call it)
    "training worker": (
        "sys.argv = ['worker']\n"
        "try:\n"
        "    runpy.run_module('core.training.worker', run_name='__main__')\n"
        "except SystemExit as exc:\n"
        "    assert 'usage' in str(exc.code), exc.code\n"
    ),
}
PROBE = (
    "import json, os, runpy, sys\n"
    "{entry}"
    "from core.vision.weights import safe_loader_on\n"
    "seen = {{k: os.environ.get(k) for k in {keys!r}}}\n"
    "with open({out!r}, 'w') as fh:\n"
    "    json.dump({{'env': seen, 'safe_loader': safe_loader_on()}}, fh)\n"
)


def _assert_offline(env: dict[str, str | None]) -> None:
    assert env["YOLO_OFFLINE"] == "1" and env["ULTRALYTICS_SAFE_LOAD"] == "1"
    assert env["YOLO_AUTOINSTALL"] == "false" and env["HF_HUB_OFFLINE"] == "1"
    assert env["DO_NOT_TRACK"] == "1"
    assert env["YOLO_CONFIG_DIR"] == str(ROOT / ".yolo-config")


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_each_process_entry_point_turns_on_the_offline_environment(entry, tmp_path):
    out = tmp_path / "seen.json"
    code = PROBE.format(entry=ENTRY_POINTS[entry], keys=OFFLINE, out=str(out))
    run = _run(code, tmp_path / "home")
    assert run.returncode == 0, run.stderr[-3000:]
    seen = json.loads(out.read_text())
    assert seen["safe_loader"] is True  # checkpoints unpickle with weights_only=True
    _assert_offline(seen["env"])


def test_a_page_opened_first_turns_on_the_offline_environment(gw_home, monkeypatch):
    """Any page may be the first a browser opens: page_setup applies it (here the overview,
    which then asks for a sign-in)."""
    from streamlit.testing.v1 import AppTest

    for key in OFFLINE:
        monkeypatch.delenv(key, raising=False)
    at = AppTest.from_file(str(ROOT / "Home.py"), default_timeout=120).run()
    assert not at.exception
    _assert_offline({k: os.environ.get(k) for k in OFFLINE})


def test_the_suite_itself_runs_with_the_safe_loader():
    """tests/conftest.py is the suite's entry point."""
    import ultralytics.utils

    assert ultralytics.utils.SAFE_LOAD is True
    before = dict(os.environ)
    apply_offline_environment()  # a second call changes nothing
    assert dict(os.environ) == before
