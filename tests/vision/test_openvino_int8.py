"""INT8 builds: quantised with NNCF, gated on the test split's mAP50, activated only if kept."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from core.vision.detector import make_detector
from tests.conftest import MINI, ROOT

pytestmark = pytest.mark.slow


def _export(gw_home, default_weights, *extra: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "core", "export", "--int8", "--weights", str(default_weights)]
    cmd += ["--data", str(MINI), "--imgsz", "320", "--calibration", "12", *extra]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_int8_build_is_refused_or_activated_by_its_accuracy(gw_home, default_weights):
    # a gate no build can pass (it must gain 0.5 mAP50): refused, one sentence, nothing active
    refused = _export(gw_home, default_weights, "--max-drop", "-0.5")
    assert refused.returncode == 2, refused.stderr[-2000:]
    line = refused.stdout.strip().splitlines()[-1]
    assert line.startswith("INT8 build refused: mAP50 ") and line.endswith("stays in use.")
    assert "INT8 vs" in line and "FP32 on 22 test images" in line
    assert make_detector(default_weights, "openvino", 320).info.backend == "openvino"
    assert not list((gw_home / "exports").glob("*-int8/*_openvino_model"))

    kept = _export(gw_home, default_weights, "--json")
    assert kept.returncode == 0, kept.stderr[-2000:]
    report = json.loads(kept.stdout)
    assert report["active"] and report["calibration_images"] == 12
    assert report["fp32_map50"] > 0.5 and report["drop"] <= 0.01
    det = make_detector(default_weights, "openvino", 320)
    assert det.info.backend == "openvino-int8" and det.info.name == default_weights.name
    assert make_detector(default_weights, "openvino", 320, int8=False).info.backend == "openvino"
    info = json.loads(
        next((gw_home / "exports").glob("*-int8/*_openvino_model/glovewatch.json")).read_text()
    )
    assert info["int8_gate"] == "passed" and info["gate"]["int8_map50"] == report["int8_map50"]
