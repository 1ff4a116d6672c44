"""Speed and memory of the live pipeline against what a user would run instead, and the chip.

``python -m core bench --source VIDEO --json`` runs, in one process on the same frames:

- this pipeline as ``core live`` runs it (decode thread, several frames in flight on the
  OpenVINO runtime, numpy ByteTrack, episodes with evidence, frames drawn only when a viewer
  looks: here a page polling at 10 Hz) on the FP32 export and on its INT8 build (when one
  passed the accuracy gate, see ``core export --int8``);
- Ultralytics' own track loop (``YOLO(model).track(frame, persist=True)``, its defaults) on
  the same OpenVINO export, on Ultralytics' own INT8 export (``format=openvino int8=True``)
  and optionally on the ``.pt``;
- the raw runtime limit of each compiled model (``benchmark_app``'s figure: every request
  busy on one prepared input, no pre- or post-processing).

The clip is read block by block; each loop handles a block right after the others, so all
see the same machine load. Each pipeline decodes the clip itself on its own thread; the
Ultralytics loops get the decoded frames with the decode time added, as a plain loop reads
and predicts in turn. Memory of ``core live`` itself (peak RSS, whether torch was loaded) is
measured in a child process on the same clip.
"""

from __future__ import annotations

import os
import queue
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.config import DEFAULT_STATION, PROJECT_ROOT, settings
from core.media import iter_video, open_video
from core.pipeline.live import FrameProcessor, LiveConfig
from core.pipeline.sources import Frame
from core.vision.detector import InferenceParams, export_model, file_sha256, load_yolo
from core.vision.openvino_detector import OpenVinoDetector

BASELINES = ("openvino", "openvino_int8")  # Ultralytics loops; "pytorch" on request
VIEWER_HZ = 10.0  # how often the Live page asks for a drawn frame


def rss_mb() -> float:
    """Resident memory of this process in MiB (Linux)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


@dataclass(frozen=True)
class BenchResult:
    source: str
    imgsz: int
    frames: int
    fps: dict[str, float]  # pipeline_fp32, pipeline_int8, ul_openvino, ul_openvino_int8 ...
    ratios: dict[str, float]  # openvino: ours FP32 / UL FP32; openvino_int8: INT8 / UL INT8
    limit_fps: dict[str, float]  # compiled model alone: fp32, int8
    share_of_limit: float  # our best pipeline / the limit of the model it runs
    stages_ms: dict[str, float]  # medians per frame
    latency_ms: dict[str, float]  # frame read -> judged and recorded in episodes: p50, p95
    episodes: int
    dropped: int  # frames the pipeline let go (none: every frame of the clip is offered)
    live: dict[str, Any]  # `core live` in a child process: fps, peak RSS, torch loaded
    wall_s: float
    rss_mb: list[tuple[float, float]] = field(default_factory=list)  # this process over time
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self) -> list[str]:
        """The figures for people."""
        out = [f"{self.frames} frames of {Path(self.source).name} at {self.imgsz} px:"]
        out += [f"  {name}: {fps} fps" for name, fps in self.fps.items()]
        out += [f"  ratio {k}: {v}x" for k, v in self.ratios.items()]
        out.append(f"  runtime limit {self.limit_fps}; share of limit {self.share_of_limit}")
        out.append(f"  stages ms {self.stages_ms}; frame-to-episode ms {self.latency_ms}")
        out.append(f"  core live: {self.live}")
        return out + [f"  note: {n}" for n in self.notes]


def _median(xs: list[float]) -> float:
    return round(statistics.median(xs), 2) if xs else 0.0


def _pct(xs: list[float], q: float) -> float:
    return round(float(np.percentile(xs, q)), 1) if xs else 0.0


class _BlockReader:
    """Decodes a clip on its own thread, ``n`` frames at a time, through a bounded queue."""

    def __init__(self, source: Path):
        self._it = iter_video(source)
        cap, info = open_video(source)
        cap.release()
        self._fps = info.fps or 30.0
        self.done = False
        self.decode_ms: list[float] = []

    def block(self, n: int, keep: list[Frame] | None = None) -> Iterator[Frame]:
        # one frame ahead, as the live reader's slot: a frame waits at most for the one
        # being worked on, so the latency is that of an overloaded camera (the worst case)
        q: queue.Queue[Frame | None] = queue.Queue(maxsize=1)

        def read() -> None:
            for _ in range(n):
                t0 = time.perf_counter()
                item = next(self._it, None)
                if item is None:
                    self.done = True
                    break
                self.decode_ms.append((time.perf_counter() - t0) * 1000)
                q.put(Frame(item[1], item[0] / self._fps, time.monotonic()))  # media time
            q.put(None)

        threading.Thread(target=read, daemon=True, name="gw-bench-read").start()
        while (frame := q.get()) is not None:
            if keep is not None:
                keep.append(frame)
            yield frame


@dataclass
class _Pipeline:
    """One live pipeline (a FrameProcessor on a private store) and what it measured."""

    proc: FrameProcessor
    reader: _BlockReader
    seconds: float = 0.0
    frames: int = 0
    latency: list[float] = field(default_factory=list)
    draw_ms: list[float] = field(default_factory=list)
    infer_ms: list[float] = field(default_factory=list)

    def run_block(self, n: int, keep: list[Frame] | None = None) -> None:
        t0 = last_draw = time.perf_counter()
        for result in self.proc.stream(self.reader.block(n, keep)):
            self.latency.append((time.monotonic() - result.frame.captured_at) * 1000)
            self.infer_ms.append(result.detections.inference_ms)
            self.frames += 1
            now = time.perf_counter()
            if now - last_draw >= 1 / VIEWER_HZ:
                result.drawn()
                self.draw_ms.append((time.perf_counter() - now) * 1000)
                last_draw = now
        self.seconds += time.perf_counter() - t0


def _ul_int8_export(weights: Path, data: Path, imgsz: int) -> Path:
    """Ultralytics' own INT8 OpenVINO export (its NNCF calibration), cached like exports."""
    from core.vision.yolo_data import read_layout, write_data_yaml

    out_dir = settings().exports_dir / f"{file_sha256(weights)[:16]}-{imgsz}-ulint8"
    target = out_dir / f"{weights.stem}_int8_openvino_model"
    if target.exists():
        return target
    out_dir.mkdir(parents=True, exist_ok=True)
    local = out_dir / weights.name
    shutil.copy2(weights, local)
    data_yaml = write_data_yaml(read_layout(data), out_dir / "data.yaml")
    model = load_yolo(local)
    return Path(
        model.export(format="openvino", int8=True, data=str(data_yaml), imgsz=imgsz, verbose=False)
    )


def _ul_models(
    weights: Path, baselines: tuple[str, ...], imgsz: int, data: Path | None
) -> tuple[dict[str, Any], list[str]]:
    models: dict[str, Any] = {}
    notes: list[str] = []
    task = load_yolo(weights).task
    for b in baselines:
        if b == "pytorch":
            models["ul_pytorch"] = load_yolo(weights)
        elif b == "openvino":
            models["ul_openvino"] = load_yolo(export_model(weights, "openvino", imgsz), task)
        elif b == "openvino_int8" and data is not None:
            models["ul_openvino_int8"] = load_yolo(_ul_int8_export(weights, data, imgsz), task)
        elif b == "openvino_int8":
            notes.append("no calibration data set: Ultralytics' INT8 export left out")
    blank = np.zeros((imgsz, imgsz, 3), np.uint8)
    for m in models.values():  # its predictor and tracker set-up, not in the timings
        m.track(blank, imgsz=imgsz, persist=True, verbose=False)
        m.predictor.trackers[0].reset()
    return models, notes


def _processor(weights: Path, imgsz: int, int8: bool, tmp: Path, source: Path) -> FrameProcessor:
    cfg = LiveConfig(
        weights=weights,
        backend="openvino",
        params=InferenceParams(imgsz=imgsz),
        station=DEFAULT_STATION,
        kind="file",
        source=source.name,
        idle_timeout_s=3600,  # the other loops run between blocks
        store_url=f"sqlite:///{tmp / ('bench-int8.sqlite' if int8 else 'bench.sqlite')}",
        evidence_dir=tmp / "evidence",  # bench episodes stay out of the plant's numbers
        int8=int8,
    )
    proc = FrameProcessor(cfg)
    if not proc.start():
        raise RuntimeError(proc.snapshot().message)
    return proc


def live_memory(source: Path, weights: Path, imgsz: int, exports: Path) -> dict[str, Any]:
    """``core live SOURCE --fast`` in a child process: fps, peak RSS, torch loaded or not."""
    with tempfile.TemporaryDirectory(prefix="gw-live-") as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        if exports.is_dir():
            (home / "exports").symlink_to(exports, target_is_directory=True)
        cmd = [sys.executable, "-m", "core", "live", str(source), "--fast", "--json"]
        cmd += ["--weights", str(weights), "--imgsz", str(imgsz)]
        env = {**os.environ, "GLOVEWATCH_HOME": str(home)}
        env.pop("GLOVEWATCH_DB_URL", None)
        t0 = time.monotonic()
        child = subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE)
        peak, torch_loaded = 0.0, False
        while child.poll() is None:
            try:
                status = Path(f"/proc/{child.pid}/status").read_text()
                peak = max(peak, int(status.split("VmHWM:")[1].split()[0]) / 1024)
                torch_loaded |= "libtorch" in Path(f"/proc/{child.pid}/maps").read_text()
            except (OSError, IndexError):
                pass
            time.sleep(0.2)
        wall = time.monotonic() - t0
        out = (child.stdout.read() if child.stdout else b"").decode()
    import json

    res = json.loads(out.strip().splitlines()[-1]) if out.strip() else {}
    frames = int(res.get("frames") or 0)
    return {
        "frames": frames,
        "fps_with_start_up": round(frames / wall, 1) if wall else 0.0,
        "peak_rss_mb": round(peak, 1),
        "torch_loaded": torch_loaded,
        "exit_code": child.returncode,
    }


def _stage_profile(proc: FrameProcessor, frames: list[Frame], imgsz: int) -> dict[str, float]:
    """One frame at a time, each stage timed (in the real run the overlap hides them)."""
    from core.vision.bytetrack import ByteTracker
    from core.vision.openvino_detector import letterbox

    det = proc.loader.detector
    if not isinstance(det, OpenVinoDetector):
        return {}
    out: dict[str, list[float]] = {"letterbox": [], "infer_sync": [], "post": [], "track": []}
    params, tracker = InferenceParams(imgsz=imgsz), ByteTracker()
    for f in frames:
        t0 = time.perf_counter()
        letterbox(f.image, (imgsz, imgsz))
        t1 = time.perf_counter()
        fd = det.detect(f.image, params)
        t2 = time.perf_counter()
        tracker.update(fd)
        t3 = time.perf_counter()
        out["letterbox"].append((t1 - t0) * 1000)
        out["infer_sync"].append(fd.inference_ms)
        out["post"].append(max(0.0, (t2 - t1) * 1000 - fd.inference_ms - out["letterbox"][-1]))
        out["track"].append((t3 - t2) * 1000)
    return {k: _median(v) for k, v in out.items()}


def run_bench(
    source: Path,
    weights: Path,
    imgsz: int = 640,
    baselines: tuple[str, ...] = BASELINES,
    data: Path | None = None,
    block_frames: int = 40,
    limit_s: float = 0.5,
    live_child: bool = True,
) -> BenchResult:
    """Time the pipeline (FP32 and INT8) against Ultralytics' loops and the runtime limit."""
    open_video(source)[0].release()  # a clear error for a bad clip before anything loads
    t_begin = time.perf_counter()
    rss: list[tuple[float, float]] = [(0.0, round(rss_mb(), 1))]
    models, notes = _ul_models(weights, baselines, imgsz, data)
    with tempfile.TemporaryDirectory(prefix="gw-bench-") as tmp_name:
        tmp = Path(tmp_name)
        procs = {"pipeline_fp32": _processor(weights, imgsz, False, tmp, source)}
        int8 = _processor(weights, imgsz, True, tmp, source)
        if int8.loader.detector is not None and int8.loader.detector.info.backend.endswith("8"):
            procs["pipeline_int8"] = int8
        else:
            int8.finish()
            notes.append("no INT8 build passed the gate for this model: run core export --int8")
        pipes = {k: _Pipeline(proc, _BlockReader(source)) for k, proc in procs.items()}
        first = pipes["pipeline_fp32"]
        ul_ms: dict[str, list[float]] = {k: [] for k in models}
        limit_fps: dict[str, list[float]] = {k: [] for k in pipes}
        sample: list[Frame] = []
        while not first.reader.done:
            kept: list[Frame] = []
            offset = len(first.reader.decode_ms)
            for p in pipes.values():
                p.run_block(block_frames, kept if p is first else None)
            for name, model in models.items():
                for j, f in enumerate(kept):
                    t0 = time.perf_counter()
                    model.track(f.image, imgsz=imgsz, persist=True, verbose=False)
                    decode_ms = first.reader.decode_ms[offset + j]
                    ul_ms[name].append((time.perf_counter() - t0) * 1000 + decode_ms)
            for key, p in pipes.items():  # the chip's limit, under the same load as the rest
                det = p.proc.loader.detector
                if isinstance(det, OpenVinoDetector):
                    limit_fps[key].append(det.throughput(limit_s))
            sample = sample or kept[:20]
            rss.append((round(time.perf_counter() - t_begin, 1), round(rss_mb(), 1)))
        profile = _stage_profile(first.proc, sample, imgsz)
        limits = {
            "int8" if k.endswith("int8") else "fp32": round(statistics.mean(v), 1)
            for k, v in limit_fps.items()
            if v
        }
        snaps = {k: p.proc.snapshot() for k, p in pipes.items()}
        for p in pipes.values():
            p.proc.finish()
    fps = {k: round(p.frames / p.seconds, 2) if p.seconds else 0.0 for k, p in pipes.items()}
    fps.update({k: round(1000 / statistics.mean(v), 2) for k, v in ul_ms.items() if v})
    best_key = "pipeline_int8" if "pipeline_int8" in fps else "pipeline_fp32"
    ratios = {}
    if "ul_openvino" in fps:
        ratios["openvino"] = round(fps["pipeline_fp32"] / fps["ul_openvino"], 2)
        ratios["best_vs_openvino"] = round(fps[best_key] / fps["ul_openvino"], 2)
    if "ul_openvino_int8" in fps and "pipeline_int8" in fps:
        ratios["openvino_int8"] = round(fps["pipeline_int8"] / fps["ul_openvino_int8"], 2)
    if "ul_pytorch" in fps:
        ratios["pytorch"] = round(fps[best_key] / fps["ul_pytorch"], 2)
    limit = limits.get("int8" if best_key.endswith("int8") else "fp32", 0.0)
    best = pipes[best_key]
    stages = {"decode": _median(first.reader.decode_ms), "infer_in_flight": _median(best.infer_ms)}
    stages.update({f"profile_{k}": v for k, v in profile.items()})
    stages["draw_when_viewed"] = _median(best.draw_ms)
    frames = first.frames
    live = live_memory(source, weights, imgsz, settings().exports_dir) if live_child else {}
    rss.append((round(time.perf_counter() - t_begin, 1), round(rss_mb(), 1)))
    return BenchResult(
        source=str(source),
        imgsz=imgsz,
        frames=frames,
        fps=fps,
        ratios=ratios,
        limit_fps=limits,
        share_of_limit=round(fps[best_key] / limit, 2) if limit else 0.0,
        stages_ms=stages,
        latency_ms={"p50": _pct(best.latency, 50), "p95": _pct(best.latency, 95)},
        episodes=snaps[best_key].episodes,
        dropped=snaps[best_key].dropped,
        live=live,
        wall_s=round(time.perf_counter() - t_begin, 1),
        rss_mb=rss,
        notes=notes,
    )
