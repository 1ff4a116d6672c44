"""Speed and memory of the live pipeline against what a user would run instead.

``python -m core bench --source VIDEO --json`` runs the whole live pipeline (decode, infer +
track, judge + episodes, draw) over a clip and, on the same frames in the same process, the
two loops a user could write instead: a plain Ultralytics ``YOLO(weights).predict`` loop on
the ``.pt`` with its default settings, and the same loop on the OpenVINO export GloveWatch
uses (``YOLO(export).predict``). It reports fps of each, both ratios, per-stage milliseconds
and resident memory sampled along the way. The loops run block by block right after the
pipeline has handled each block, so all three see the same load on a shared machine.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from core.config import DEFAULT_STATION, DEFAULTS
from core.events.recorder import EpisodeRecorder, RecordingContext
from core.events.rules import StationRule
from core.events.sinks import StoreSink
from core.media import iter_video, open_video
from core.storage import open_store
from core.vision.annotate import draw
from core.vision.detector import DETECTORS, InferenceParams, export_model, load_yolo

BASELINES = ("pytorch", "openvino")


def rss_mb() -> float:
    """Resident memory of this process in MiB (Linux)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


@dataclass(frozen=True)
class StageTimes:
    """Median milliseconds per frame of each pipeline stage."""

    decode: float
    infer_track: float
    episodes: float
    annotate: float


@dataclass(frozen=True)
class BenchResult:
    source: str
    backend: str
    imgsz: int
    frames: int
    passes: int
    pipeline_fps: float  # frames / pipeline time (decode, infer + track, episodes, draw)
    plain_fps: dict[str, float]  # baseline -> frames / (decode + predict) time
    ratios: dict[str, float]  # baseline -> pipeline_fps / its fps
    stages_ms: StageTimes
    plain_ms: dict[str, float]  # baseline -> median decode + predict
    episodes: int
    wall_s: float
    rss_mb: list[tuple[float, float]] = field(default_factory=list)  # (seconds, MiB)
    torch_threads: int = 0  # pipeline
    plain_torch_threads: int = 0  # what Ultralytics' own device setup left

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _median(xs: Iterable[float]) -> float:
    xs = list(xs)
    return round(statistics.median(xs), 2) if xs else 0.0


def run_bench(
    source: Path,
    weights: Path,
    backend: str = DEFAULTS.backend,
    imgsz: int = 640,
    passes: int = 1,
    baselines: tuple[str, ...] = BASELINES,
    sample_every_s: float = 10.0,
    block_frames: int = 40,
) -> BenchResult:
    """Time the full pipeline (``passes`` times over the clip) against the baseline loops.

    The baselines keep Ultralytics' defaults, including the torch thread count its device
    set-up chooses; they run on the first pass only.
    """
    import torch

    _, info = open_video(source)
    params = InferenceParams(imgsz=imgsz)
    blank = np.zeros((info.height, info.width, 3), np.uint8)
    stages: dict[str, list[float]] = {"decode": [], "infer": [], "episodes": [], "annotate": []}
    plain: dict[str, Any] = {}
    plain_ms: dict[str, list[float]] = {b: [] for b in baselines}
    rss: list[tuple[float, float]] = [(0.0, round(rss_mb(), 1))]
    for b in baselines:  # what a plain loop does: defaults, no tuning
        model = load_yolo(
            export_model(weights, b, imgsz),
            task=None if b == "pytorch" else load_yolo(Path(weights)).task,
        )
        model.predict(blank, imgsz=imgsz, verbose=False)
        plain[b] = model
    plain_threads = torch.get_num_threads()
    frames = 0
    t_begin = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, DETECTORS.acquire(weights, backend, imgsz) as det:
        # a private store: benchmark episodes must not show up in the plant's numbers
        store = open_store(str(Path(tmp) / "bench.sqlite"))
        # warm-up with tracking: its predictor set-up is what later frames run on
        det.detect(blank, params, track=True)
        det.detect(blank, params, track=True)
        det.reset_tracker()
        threads = torch.get_num_threads()
        ctx = RecordingContext(
            DEFAULT_STATION, source=str(source), model_hash=det.info.sha256, started=datetime.now()
        )
        rec = EpisodeRecorder(ctx, StationRule(), StoreSink(store))
        next_sample = sample_every_s
        for p in range(passes):
            det.reset_tracker()
            it = iter_video(source)
            done = False
            while not done:
                block: list[tuple[int, np.ndarray, float]] = []
                while len(block) < block_frames:
                    t0 = time.perf_counter()
                    item = next(it, None)
                    t1 = time.perf_counter()
                    if item is None:
                        done = True
                        break
                    block.append((item[0], item[1], (t1 - t0) * 1000))
                for index, image, decode_ms in block:
                    t1 = time.perf_counter()
                    fd = det.detect(image, params, track=True)
                    t2 = time.perf_counter()
                    judged = rec.process(
                        (p * info.frames + index) / info.fps, fd, image, index
                    ).judgement
                    t3 = time.perf_counter()
                    draw(image, fd, judged.status)
                    t4 = time.perf_counter()
                    stages["decode"].append(decode_ms)
                    stages["infer"].append((t2 - t1) * 1000)
                    stages["episodes"].append((t3 - t2) * 1000)
                    stages["annotate"].append((t4 - t3) * 1000)
                    frames += 1
                if p == 0 and block:
                    # whole blocks, so torch's thread pool is not resized on every frame
                    torch.set_num_threads(plain_threads)
                    for name, model in plain.items():
                        for _, image, decode_ms in block:
                            t5 = time.perf_counter()
                            model.predict(image, imgsz=imgsz, verbose=False)
                            plain_ms[name].append((time.perf_counter() - t5) * 1000 + decode_ms)
                    torch.set_num_threads(threads)
                if time.perf_counter() - t_begin >= next_sample:
                    rss.append((round(time.perf_counter() - t_begin, 1), round(rss_mb(), 1)))
                    next_sample += sample_every_s
        rec.finish()
        episodes = rec.episodes_total
        store.db.dispose()
    rss.append((round(time.perf_counter() - t_begin, 1), round(rss_mb(), 1)))
    per_frame = [sum(v) for v in zip(*stages.values())]
    pipeline_fps = 1000 / statistics.mean(per_frame) if per_frame else 0.0
    fps = {b: round(1000 / statistics.mean(ms), 2) if ms else 0.0 for b, ms in plain_ms.items()}
    return BenchResult(
        source=str(source),
        backend=backend,
        imgsz=imgsz,
        frames=frames,
        passes=passes,
        pipeline_fps=round(pipeline_fps, 2),
        plain_fps=fps,
        ratios={b: round(pipeline_fps / f, 2) if f else 0.0 for b, f in fps.items()},
        stages_ms=StageTimes(
            _median(stages["decode"]),
            _median(stages["infer"]),
            _median(stages["episodes"]),
            _median(stages["annotate"]),
        ),
        plain_ms={b: _median(ms) for b, ms in plain_ms.items()},
        episodes=episodes,
        wall_s=round(time.perf_counter() - t_begin, 1),
        rss_mb=rss,
        torch_threads=threads,
        plain_torch_threads=plain_threads,
    )
