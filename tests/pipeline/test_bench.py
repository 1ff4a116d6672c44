"""The benchmark: the live pipeline against plain Ultralytics loops on the .pt and on the
OpenVINO export, through the core and the command line."""

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


def test_bench_reports_pipeline_both_baselines_stages_and_memory(
    gw_home, default_weights, shift_clip, openvino_ready
):
    res = run_bench(
        shift_clip,
        default_weights,
        backend="pytorch",
        imgsz=320,
        sample_every_s=1.0,
        block_frames=8,
    )
    assert res.frames == 32 and res.passes == 1 and res.backend == "pytorch"
    assert res.pipeline_fps > 0
    assert set(res.plain_fps) == {"pytorch", "openvino"}
    assert all(fps > 0 for fps in res.plain_fps.values())
    assert set(res.ratios) == {"pytorch", "openvino"}
    for name, fps in res.plain_fps.items():
        assert res.ratios[name] == pytest.approx(res.pipeline_fps / fps, abs=0.011)
    stages = res.stages_ms
    assert stages.infer_track > 0 and stages.decode >= 0 and stages.annotate > 0
    assert stages.episodes >= 0
    assert set(res.plain_ms) == {"pytorch", "openvino"}
    assert len(res.rss_mb) >= 2 and all(mb > 0 for _, mb in res.rss_mb)
    assert [t for t, _ in res.rss_mb] == sorted(t for t, _ in res.rss_mb)
    assert res.episodes == 2  # the clip's two bare-hand episodes, in a private store
    assert events(open_store()) == []  # benchmark episodes stay out of the plant's numbers


def test_bench_cli_prints_the_json(gw_home, default_weights, bare_images, openvino_ready, tmp_path):
    clip = write_clip(bare_images[:1], tmp_path / "short.mp4", fps=5, seconds_each=1.6)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "core",
            "bench",
            "--source",
            str(clip),
            "--backend",
            "pytorch",
            "--imgsz",
            "320",
            "--weights",
            str(default_weights),
            "--json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    res = json.loads(out.stdout)  # nothing but the JSON on stdout
    assert res["frames"] == 8 and res["pipeline_fps"] > 0
    assert set(res["plain_fps"]) == set(res["ratios"]) == {"pytorch", "openvino"}
    assert set(res["stages_ms"]) == {"decode", "infer_track", "episodes", "annotate"}
    assert len(res["rss_mb"]) >= 2 and res["imgsz"] == 320

    bad = subprocess.run(
        [sys.executable, "-m", "core", "bench", "--source", "nope.mp4"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode == 1 and "nope.mp4" in bad.stderr
    assert "Traceback" not in bad.stderr
