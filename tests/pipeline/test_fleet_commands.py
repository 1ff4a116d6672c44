"""The fleet's two measuring commands, each run as a user runs it (a real broker, worker,
ingester and store, each its own process): ``bench-fleet`` and ``fleet-faults``."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from core.pipeline.broker import find_mosquitto
from tests.conftest import ROOT

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        find_mosquitto() is None,
        reason="mosquitto is not installed (Debian: apt-get install mosquitto); CI installs it",
    ),
]


def _core(gw_home, *args: str, timeout: float) -> dict:
    env = dict(
        os.environ, GLOVEWATCH_HOME=str(gw_home), PYTHONPATH=str(ROOT), GLOVEWATCH_TORCH_THREADS="1"
    )
    env.pop("GLOVEWATCH_DB_URL", None)
    env.pop("GLOVEWATCH_MQTT_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "core", *args, "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode in (0, 2), done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_bench_fleet_measures_a_camera_through_broker_ingester_and_store(gw_home):
    out = _core(
        gw_home,
        "bench-fleet",
        "--cameras",
        "2",
        "--seconds",
        "12",
        "--imgsz",
        "320",
        "--backend",
        "pytorch",
        timeout=600,
    )
    (run,) = out["runs"]
    assert (out["store"], out["broker"], run["cameras"]) == ("sqlite", "mosquitto (private)", 2)
    assert run["analysed"] > 0 and run["skipped"] > 0  # one still and one moving camera
    assert run["episodes_stored"] == run["episodes_emitted"]
    assert run["cpu_per_camera"] > 0 and len(run["per_camera"]) == 2
    assert out["max_held"] in (0, 2) and (out["max_held"] == 2) == (run["held"] == 2)
    if run["latency_n"]:
        assert 0 < run["latency_p50_ms"] <= run["latency_p95_ms"]


def test_fleet_faults_loses_and_doubles_nothing(gw_home):
    out = _core(
        gw_home,
        "fleet-faults",
        "--cameras",
        "1",
        "--seconds",
        "40",
        "--backend",
        "pytorch",
        timeout=900,
    )
    assert out["ok"], out
    assert sum("SIGKILL" in line for line in out["timeline"]) == 3
    assert out["episodes_emitted"] > 0 and not out["missing"] and out["extra"] == 0
    assert out["covered_s_stored"] == pytest.approx(out["covered_s_emitted"], abs=1e-3)
    assert out["coverage_messages"] > 10
