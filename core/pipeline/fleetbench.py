"""How many cameras one machine holds: ``python -m core bench-fleet --cameras N --json``.

The whole fleet path runs as it would in a plant, each part its own process: a camera worker
(:mod:`core.pipeline.worker`) with N cameras replayed in real time from clips (looping), a
Mosquitto broker, the ingester (:mod:`core.comms.ingest`) and the store. Half the cameras
(``still_share``) watch still scenes (a picture held for 10 s, as a machine seen from a
fixed camera mostly is) and the rest moving ones (the picture pans every frame), so motion
gating matters as it would. Clips are made from the fixture images (bare and gloved hands,
so episodes open and close).

For each camera count it reports whether every camera kept its analysis rate (frames
analysed or skipped per second, no slots lost), the end-to-end latency of episodes (the
``new`` event emitted at the worker until its row is committed by the ingester: p50, p95),
CPU seconds per camera per second (the worker; and worker + ingester + broker), analysed
against skipped frames, and the machine's load average, which on a shared machine says how
much of the CPU the run really had.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from core.comms.keys import issue_in
from core.comms.signbench import measure_signing
from core.config import PROJECT_ROOT, settings
from core.errors import ConfigError, GloveWatchError
from core.media import VideoWriter, read_image
from core.pipeline.broker import Mosquitto
from core.pipeline.clips import fit, write_clip
from core.storage import Store, close_store, open_store
from core.storage.filters import HistoryFilter

log = logging.getLogger(__name__)

FIXTURE = PROJECT_ROOT / "tests" / "fixtures" / "gloves-mini"
CLIP_SIZE = (640, 480)
CLIP_FPS = 10


def fixture_images(root: Path = FIXTURE) -> tuple[list[Path], list[Path]]:
    """(bare-hand images, gloved images) of the fixture set's test split, by their labels."""
    bare, gloved = [], []
    for lab in sorted((root / "labels" / "test").glob("*.txt")):
        ids = {line.split()[0] for line in lab.read_text().splitlines() if line.strip()}
        image = root / "images" / "test" / f"{lab.stem}.jpg"
        if ids == {"1"}:
            bare.append(image)
        elif ids == {"0"}:
            gloved.append(image)
    if not bare or not gloved:
        raise ConfigError(f"{root} has no bare-hand or no gloved test images to make clips of.")
    return bare, gloved


def _moving_clip(
    images: list[Path], path: Path, seconds_each: float = 3.0, step_px: int = 6
) -> Path:
    """A clip whose picture pans ``step_px`` to the side every frame (motion everywhere)."""
    per = max(1, int(round(CLIP_FPS * seconds_each)))
    with VideoWriter(path, CLIP_FPS, *CLIP_SIZE) as out:
        for image in images:
            base = fit(read_image(image), CLIP_SIZE)
            for i in range(per):
                shift = (i * step_px) % (2 * CLIP_SIZE[0] // 4) - CLIP_SIZE[0] // 4
                m = np.array([[1, 0, shift], [0, 1, 0]], np.float32)
                out.write(cv2.warpAffine(base, m, CLIP_SIZE))
    return path


def scene_clips(folder: Path) -> tuple[list[Path], list[Path]]:
    """(still clips, moving clips): two of each, alternating bare and gloved hands."""
    bare, gloved = fixture_images()
    folder.mkdir(parents=True, exist_ok=True)

    def mix(offset: int, n: int) -> list[Path]:
        out = []
        for i in range(n):
            pool = bare if i % 2 == 0 else gloved
            out.append(pool[(offset + i) % len(pool)])
        return out

    still = [
        write_clip(
            mix(k * 3, 4),
            folder / f"still-{k}.mp4",
            fps=CLIP_FPS,
            seconds_each=10.0,
            size=CLIP_SIZE,
        )
        for k in range(2)
    ]
    moving = [_moving_clip(mix(k * 5 + 1, 4), folder / f"moving-{k}.mp4") for k in range(2)]
    return still, moving


def camera_yaml(
    name: str,
    clips: list[tuple[str, Path]],
    fps: float,
    backend: str,
    imgsz: int,
    motion: bool,
    weights: Path | None,
) -> str:
    """A cameras.yaml for a worker replaying ``clips`` ((station, clip) per camera)."""
    lines = [
        f"worker: {name}",
        f"backend: {backend}",
        f"imgsz: {imgsz}",
        f"fps: {fps}",
        f"motion: {{enabled: {str(motion).lower()}}}",
        "heartbeat_s: 2",
    ]
    if weights is not None:
        lines.append(f"weights: {json.dumps(str(weights))}")
    lines.append("cameras:")
    for i, (station, clip) in enumerate(clips, 1):
        lines += [
            f"  - name: {name}-cam{i:02d}",
            f"    station: {json.dumps(station)}",
            f"    source: {json.dumps(str(clip))}",
            "    loop: true",
        ]
    return "\n".join(lines) + "\n"


def cpu_ticks_s(pid: int) -> float:
    """CPU seconds (user + system) a running process has used, from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def child_env(home: Path, store_url: str, broker_url: str) -> dict[str, str]:
    """The environment of the fleet's processes: a private data folder (sharing this one's
    model exports, so an OpenVINO export is made once), the store and the broker."""
    exports = settings().exports_dir
    if not (home / "exports").exists():
        try:
            exports.mkdir(parents=True, exist_ok=True)
            home.mkdir(parents=True, exist_ok=True)
            (home / "exports").symlink_to(exports, target_is_directory=True)
        except OSError:
            pass  # exported again in the private folder
    env = dict(
        os.environ,
        GLOVEWATCH_HOME=str(home),
        GLOVEWATCH_DB_URL=store_url,
        GLOVEWATCH_MQTT_URL=broker_url,
        PYTHONPATH=str(PROJECT_ROOT),
    )
    env.pop("GLOVEWATCH_WORKER_NAME", None)
    return env


def python_core(*args: str) -> list[str]:
    return [sys.executable, "-m", "core", *args]


def stop_json(proc: subprocess.Popen[str], timeout_s: float = 60.0) -> dict[str, Any]:
    """SIGTERM a command started with ``--json`` and read its JSON."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        out, _ = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return last_json(out)


def last_json(out: str | None) -> dict[str, Any]:
    for line in reversed((out or "").strip().splitlines()):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return {}


@dataclass(frozen=True)
class FleetBenchConfig:
    cameras: tuple[int, ...] = (8,)
    seconds: float = 30.0
    fps: float = 5.0
    backend: str = "openvino"
    imgsz: int = 640
    broker: str = "auto"  # auto: a private mosquitto; else an mqtt:// URL
    weights: Path | None = None
    still_share: float = 0.5
    motion: bool = True
    store_url: str | None = None  # None: GLOVEWATCH_DB_URL if PostgreSQL, else private SQLite
    stop_after_miss: bool = True


@dataclass(frozen=True)
class FleetRun:
    """One camera count."""

    cameras: int
    held: int  # cameras that kept their analysis rate
    fps_min: float
    fps_mean: float
    analysed: int
    skipped: int
    missed: int  # analysis slots lost because the worker was behind
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_n: int  # new episodes measured
    episodes_emitted: int
    episodes_stored: int
    cpu_per_camera: float  # worker CPU seconds per camera per second
    cpu_per_camera_all: float  # worker + ingester + broker
    batch_mean: float
    infer_ms_per_frame: float
    seconds: float
    load_before: float
    load_after: float
    duplicates: int  # messages the ingester saw twice and left alone
    per_camera: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class FleetBenchResult:
    backend: str
    imgsz: int
    fps: float
    seconds: float
    store: str  # sqlite | postgresql
    broker: str
    cpus: int
    motion: bool
    runs: list[FleetRun]
    signing: dict[str, float] = field(default_factory=dict)  # messages/s signed and not

    @property
    def max_held(self) -> int:
        """The largest camera count at which every camera kept its rate (0: none)."""
        return max((r.cameras for r in self.runs if r.held == r.cameras), default=0)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["max_held"] = self.max_held
        return d


def _store_url(cfg: FleetBenchConfig, tmp: Path) -> str:
    if cfg.store_url:
        return cfg.store_url
    configured = settings().db_url
    if configured.startswith(("postgresql", "postgres")):
        return configured
    return f"sqlite:///{tmp / 'fleet.sqlite'}"


def run_fleet_bench(
    cfg: FleetBenchConfig, log: Callable[[str], None] | None = None
) -> FleetBenchResult:
    """Run the fleet benchmark (see module docstring)."""
    say = log or (lambda _text: None)
    with tempfile.TemporaryDirectory(prefix="gw-fleet-") as tmp_name:
        tmp = Path(tmp_name)
        store_url = _store_url(cfg, tmp)
        store = open_store(store_url)  # created and migrated once, before the processes
        dialect = store.db.dialect
        say(f"making clips; store: {dialect}")
        still, moving = scene_clips(tmp / "clips")
        broker = Mosquitto(tmp / "broker").start() if cfg.broker == "auto" else None
        broker_url = broker.url if broker else cfg.broker
        runs: list[FleetRun] = []
        try:
            for n in cfg.cameras:
                run = _one(cfg, n, tmp, store_url, broker_url, still, moving, broker, say)
                runs.append(run)
                say(
                    f"{n} cameras: held {run.held}/{n}, fps min {run.fps_min}, latency p50 "
                    f"{run.latency_p50_ms} ms, p95 {run.latency_p95_ms} ms, CPU "
                    f"{run.cpu_per_camera} s per camera-second (load {run.load_after})"
                )
                if cfg.stop_after_miss and run.held < n:
                    break
            signing = asdict(measure_signing(store))
        finally:
            if broker is not None:
                broker.stop()
            close_store(store)
    return FleetBenchResult(
        cfg.backend,
        cfg.imgsz,
        cfg.fps,
        cfg.seconds,
        dialect,
        "mosquitto (private)" if cfg.broker == "auto" else cfg.broker,
        os.cpu_count() or 0,
        cfg.motion,
        runs,
        signing,
    )


def _one(
    cfg: FleetBenchConfig,
    n: int,
    tmp: Path,
    store_url: str,
    broker_url: str,
    still: list[Path],
    moving: list[Path],
    broker: Mosquitto | None,
    say: Callable[[str], None],
) -> FleetRun:
    name = f"bench{n}-{int(time.time()) % 100000}"
    n_still = round(n * cfg.still_share)
    clips = [
        (f"bench {i + 1:02d}", still[i % len(still)] if i < n_still else moving[i % len(moving)])
        for i in range(n)
    ]
    config = tmp / f"{name}.yaml"
    config.write_text(
        camera_yaml(name, clips, cfg.fps, cfg.backend, cfg.imgsz, cfg.motion, cfg.weights)
    )
    env = child_env(tmp / "home", store_url, broker_url)
    env["GLOVEWATCH_WORKER_KEY"] = issue_in(open_store(store_url), tmp / "home", name)
    ingest = subprocess.Popen(
        python_core("ingest", "--json", "--client-id", f"ingest-{name}"),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    load_before = os.getloadavg()[0]
    broker_cpu0 = cpu_ticks_s(broker.proc.pid) if broker and broker.proc else 0.0
    say(f"{n} cameras for {cfg.seconds:.0f} s ...")
    worker = subprocess.run(
        python_core(
            "worker",
            "--config",
            str(config),
            "--seconds",
            str(cfg.seconds),
            "--json",
            "--outbox",
            str(tmp / f"{name}.jsonl"),
        ),
        env=env,
        capture_output=True,
        text=True,
        timeout=cfg.seconds + 900,
    )
    load_after = os.getloadavg()[0]
    report = last_json(worker.stdout)
    if not report:
        stop_json(ingest)
        raise GloveWatchError(f"the worker failed: {worker.stderr.strip()[-400:]}")
    ingest_cpu = cpu_ticks_s(ingest.pid)
    broker_cpu = (cpu_ticks_s(broker.proc.pid) if broker and broker.proc else 0.0) - broker_cpu0
    stats = stop_json(ingest)
    cams = report["cameras"]
    secs = float(report["seconds"]) or cfg.seconds
    store = open_store(store_url)
    stored = stored_episodes(store, {c["station"] for c in cams}, {c["name"] for c in cams})
    return FleetRun(
        cameras=n,
        held=int(report["held"]),
        fps_min=min(c["fps"] for c in cams),
        fps_mean=round(sum(c["fps"] for c in cams) / len(cams), 2),
        analysed=sum(c["analysed"] for c in cams),
        skipped=sum(c["skipped"] for c in cams),
        missed=sum(c["missed"] for c in cams),
        latency_p50_ms=stats.get("latency_p50_ms"),
        latency_p95_ms=stats.get("latency_p95_ms"),
        latency_n=int(stats.get("latency_n", 0)),
        episodes_emitted=sum(c["episodes"] for c in cams),
        episodes_stored=stored,
        cpu_per_camera=float(report["cpu_per_camera"]),
        cpu_per_camera_all=round((float(report["cpu_s"]) + ingest_cpu + broker_cpu) / n / secs, 3),
        batch_mean=float(report["batch_mean"]),
        infer_ms_per_frame=float(report["infer_ms_per_frame"]),
        seconds=secs,
        load_before=round(load_before, 2),
        load_after=round(load_after, 2),
        duplicates=int(stats.get("duplicates", 0)),
        per_camera=[
            {
                k: c[k]
                for k in (
                    "name",
                    "fps",
                    "analysed",
                    "skipped",
                    "missed",
                    "episodes",
                    "lag_p95_ms",
                    "held",
                )
            }
            for c in cams
        ],
    )


def stored_episodes(store: Store, stations: set[str], sources: set[str]) -> int:
    """Episodes stored since yesterday at ``stations`` from the cameras ``sources``."""
    today = date.today()
    f = HistoryFilter(start=today - timedelta(days=1), end=today, stations=tuple(sorted(stations)))
    return sum(1 for e in store.events.matching(f, limit=1_000_000) if e.source in sources)
