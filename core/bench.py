"""Speed and memory of the live pipeline against a plain Ultralytics predict loop.

``python -m core bench --source VIDEO --backend openvino --json`` runs the whole live
pipeline (decode, infer + track, episodes, annotate) over a clip, then a plain
``YOLO(weights).predict`` loop over the same frames in the same process, and reports fps,
per-stage milliseconds, the ratio, and resident memory sampled along the way. Clips for it
(and for tests and the browser's fake camera) are made from still images with
:func:`write_clip` / :func:`write_y4m`.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np

from core import store as st
from core.annotate import draw
from core.detector import DETECTORS, InferenceParams
from core.episodes import EpisodeRecorder, RecordingContext
from core.media import VideoWriter, iter_video, open_video, read_image
from core.stations import DEFAULT_STATION, current_rule


def _fit(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Letterbox ``image`` into ``size`` (w, h) without distorting it."""
    w, h = size
    scale = min(w / image.shape[1], h / image.shape[0])
    resized = cv2.resize(image, (max(1, int(image.shape[1] * scale)),
                                 max(1, int(image.shape[0] * scale))))
    out = np.zeros((h, w, 3), np.uint8)
    y, x = (h - resized.shape[0]) // 2, (w - resized.shape[1]) // 2
    out[y:y + resized.shape[0], x:x + resized.shape[1]] = resized
    return out


def clip_frames(images: Sequence[Path], fps: int = 10, seconds_each: float = 2.0,
                size: tuple[int, int] = (640, 480)) -> Iterator[np.ndarray]:
    """Frames of a clip holding each image for ``seconds_each`` (a slight drift keeps the
    frames from being byte-identical, like a real camera)."""
    per = max(1, int(round(fps * seconds_each)))
    for path in images:
        base = _fit(read_image(path), size)
        for i in range(per):
            yield np.roll(base, i % 3, axis=1)


def write_clip(images: Sequence[Path], path: Path, fps: int = 10, seconds_each: float = 2.0,
               size: tuple[int, int] = (640, 480)) -> Path:
    """An H.264 MP4 clip made from still images."""
    with VideoWriter(path, fps, *size) as out:
        for frame in clip_frames(images, fps, seconds_each, size):
            out.write(frame)
    return path


def write_y4m(images: Sequence[Path], path: Path, fps: int = 10, seconds_each: float = 2.0,
              size: tuple[int, int] = (640, 480)) -> Path:
    """A raw .y4m clip (what Chromium's fake camera reads) made from still images."""
    w, h = size
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in clip_frames(images, fps, seconds_each, size):
            fh.write(b"FRAME\n")
            fh.write(cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420).tobytes())
    return path


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
    pipeline_fps: float  # frames / pipeline time (decode, infer + track, episodes, annotate)
    plain_fps: float  # frames / (decode + plain predict) time
    ratio: float  # pipeline_fps / plain_fps
    stages_ms: StageTimes
    plain_ms: float  # median decode + predict of the plain loop
    episodes: int
    wall_s: float
    rss_mb: list[tuple[float, float]] = field(default_factory=list)  # (seconds, MiB)
    torch_threads: int = 0  # pipeline
    plain_torch_threads: int = 0  # what Ultralytics' own device setup left

    def as_dict(self) -> dict:
        return asdict(self)


def _median(xs: Iterable[float]) -> float:
    xs = list(xs)
    return round(statistics.median(xs), 2) if xs else 0.0


def run_bench(source: Path, weights: Path, backend: str = "pytorch", imgsz: int = 640,
              passes: int = 1, plain: bool = True, sample_every_s: float = 10.0,
              block_frames: int = 40) -> BenchResult:
    """Time the full pipeline (``passes`` times over the clip) against a plain predict loop.

    The plain ``YOLO(weights).predict`` loop runs over each block of ``block_frames`` frames
    right after the pipeline has handled it (first pass only), so both see the same CPU load:
    on a shared machine, two separate runs minutes apart are not comparable. The plain loop keeps Ultralytics'
    defaults, including the torch thread count its device set-up chooses.
    """
    import torch

    _, info = open_video(source)
    params = InferenceParams(imgsz=imgsz)
    blank = np.zeros((info.height, info.width, 3), np.uint8)
    stages: dict[str, list[float]] = {"decode": [], "infer": [], "episodes": [], "annotate": []}
    plain_ms: list[float] = []
    rss: list[tuple[float, float]] = [(0.0, round(rss_mb(), 1))]
    model = None
    plain_threads = 0
    if plain:
        from ultralytics import YOLO

        model = YOLO(str(weights))  # what a plain loop does: defaults, PyTorch, no tuning
        model.predict(blank, imgsz=imgsz, verbose=False)
        plain_threads = torch.get_num_threads()
    frames = 0
    t_begin = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, \
            DETECTORS.acquire(weights, backend, imgsz) as det:
        # a private store: benchmark episodes must not show up in the plant's numbers
        conn = st.connect(Path(tmp) / "bench.sqlite")
        # warm-up with tracking: its predictor set-up is what later frames run on
        det.detect(blank, params, track=True)
        det.detect(blank, params, track=True)
        det.reset_tracker()
        threads = torch.get_num_threads()
        rule = current_rule(conn, DEFAULT_STATION)
        ctx = RecordingContext(DEFAULT_STATION, source=str(source), model_hash=det.info.sha256,
                               started=datetime.now())
        rec = EpisodeRecorder(conn, ctx, rule)
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
                    rec.process((p * info.frames + index) / info.fps, fd, image, index)
                    t3 = time.perf_counter()
                    draw(image, fd)
                    t4 = time.perf_counter()
                    stages["decode"].append(decode_ms)
                    for k, a, b in (("infer", t1, t2), ("episodes", t2, t3),
                                    ("annotate", t3, t4)):
                        stages[k].append((b - a) * 1000)
                    frames += 1
                if model is not None and p == 0 and block:
                    # whole blocks, so torch's thread pool is not resized on every frame
                    torch.set_num_threads(plain_threads)
                    for _, image, decode_ms in block:
                        t5 = time.perf_counter()
                        model.predict(image, imgsz=imgsz, verbose=False)
                        plain_ms.append((time.perf_counter() - t5) * 1000 + decode_ms)
                    torch.set_num_threads(threads)
                if time.perf_counter() - t_begin >= next_sample:
                    rss.append((round(time.perf_counter() - t_begin, 1), round(rss_mb(), 1)))
                    next_sample += sample_every_s
        rec.finish()
        episodes = rec.episodes_total
        conn.close()
    rss.append((round(time.perf_counter() - t_begin, 1), round(rss_mb(), 1)))
    per_frame = [sum(v) for v in zip(*stages.values())]
    pipeline_fps = 1000 / statistics.mean(per_frame) if per_frame else 0.0
    plain_fps = 1000 / statistics.mean(plain_ms) if plain_ms else 0.0
    return BenchResult(
        source=str(source), backend=backend, imgsz=imgsz, frames=frames, passes=passes,
        pipeline_fps=round(pipeline_fps, 2), plain_fps=round(plain_fps, 2),
        ratio=round(pipeline_fps / plain_fps, 2) if plain_fps else 0.0,
        stages_ms=StageTimes(_median(stages["decode"]), _median(stages["infer"]),
                             _median(stages["episodes"]), _median(stages["annotate"])),
        plain_ms=_median(plain_ms), episodes=episodes,
        wall_s=round(time.perf_counter() - t_begin, 1), rss_mb=rss, torch_threads=threads,
        plain_torch_threads=plain_threads)
