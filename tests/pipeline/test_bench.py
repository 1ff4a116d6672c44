"""The benchmark: the live pipeline against Ultralytics' track loop on the same OpenVINO export
and the runtime's own limit, `core live`'s memory, through the core and the command line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from core.pipeline.bench import run_bench
from core.pipeline.clips import write_clip
from core.storage import open_store
from tests.conftest import ROOT
from tests.pipeline.support import events

pytestmark = pytest.mark.slow


def test_bench_reports_pipeline_baseline_limit_latency_and_live_memory(
    gw_home, default_weights, shift_clip, openvino_ready
):
    res = run_bench(shift_clip, default_weights, imgsz=320, baselines=("openvino",), block_frames=8)
    assert res.frames == 32 and res.imgsz == 320
    assert set(res.fps) == {"pipeline_fp32", "ul_openvino"}  # no INT8 build at 320 here
    assert any("core export --int8" in n for n in res.notes)
    assert all(fps > 0 for fps in res.fps.values())
    assert res.ratios["openvino"] == pytest.approx(
        res.fps["pipeline_fp32"] / res.fps["ul_openvino"], abs=0.011
    )
    assert res.limit_fps["fp32"] > 0 and res.share_of_limit > 0
    assert res.stages_ms["infer_in_flight"] > 0 and res.stages_ms["profile_infer_sync"] > 0
    assert 0 < res.latency_ms["p50"] <= res.latency_ms["p95"]
    assert res.episodes == 2 and res.dropped == 0  # the clip's two bare-hand episodes
    assert events(open_store()) == []  # benchmark episodes stay out of the plant's numbers
    assert not (gw_home / "evidence").exists() or not any((gw_home / "evidence").rglob("*.jpg"))
    live = res.live
    assert live["exit_code"] == 0 and live["frames"] == 32
    assert live["torch_loaded"] is False and 0 < live["peak_rss_mb"] < 600
    assert [t for t, _ in res.rss_mb] == sorted(t for t, _ in res.rss_mb)


def test_bench_cli_prints_the_json(gw_home, default_weights, bare_images, openvino_ready, tmp_path):
    clip = write_clip(bare_images[:1], tmp_path / "short.mp4", fps=5, seconds_each=1.6)
    cmd = [sys.executable, "-m", "core", "bench", "--source", str(clip), "--imgsz", "320"]
    cmd += ["--weights", str(default_weights), "--baselines", "openvino", "--no-live", "--json"]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    res = json.loads(out.stdout)  # nothing but the JSON on stdout
    assert res["frames"] == 8 and res["fps"]["pipeline_fp32"] > 0
    assert set(res["ratios"]) == {"openvino", "best_vs_openvino"}
    assert {"p50", "p95"} <= set(res["latency_ms"]) and res["live"] == {}

    bad = subprocess.run(
        [sys.executable, "-m", "core", "bench", "--source", "nope.mp4"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode == 1 and "nope.mp4" in bad.stderr
    assert "Traceback" not in bad.stderr
