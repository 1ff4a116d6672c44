"""A camera worker's configuration: ``cameras.yaml``.

::

    worker: line-1              # default: GLOVEWATCH_WORKER_NAME, else the host name
    backend: openvino           # pytorch | onnx | openvino
    weights: models/site.pt     # default: the active model
    imgsz: 640
    conf: 0.25
    fps: 5                      # analysis rate of every camera (frames per second)
    heartbeat_s: 5
    stall_after_s: 5            # a camera sending nothing this long is "stalled"
    max_batch: 4                # frames per detector call
    motion: {enabled: true, threshold: 25, min_area: 0.003, max_skip_s: 5}
    cameras:
      - name: saw-01            # unique across the plant
        station: Saw 01
        source: env:CAM_SAW01   # rtsp://, http(s)://, env:NAME, or a video file
      - name: replay-1
        station: Press 2
        source: clips/press.mp4 # relative to this file
        loop: true              # a file replayed over and over
        fps: 2
        motion: {enabled: false}

Every camera-level key (``fps``, ``motion``) overrides the worker-level one.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from core.comms.messages import check_worker_name
from core.config import DEFAULT_STATION, DEFAULTS, settings
from core.errors import ConfigError, DatasetError
from core.events.episodes import EpisodeConfig
from core.pipeline.motion import MotionConfig
from core.pipeline.sources import is_url
from core.vision.detector import BACKENDS, InferenceParams
from core.vision.yolo_data import load_yaml

MAX_FPS = 30.0


@dataclass(frozen=True)
class CameraSpec:
    """One camera of a worker."""

    name: str
    source: str  # URL, env:NAME or a file path (resolved against the config's folder)
    station: str = DEFAULT_STATION
    fps: float = 5.0
    loop: bool = False  # files only: replay over and over
    motion: MotionConfig = field(default_factory=MotionConfig)

    @property
    def is_file(self) -> bool:
        return not is_url(self.source)


@dataclass(frozen=True)
class WorkerConfig:
    """A worker and its cameras."""

    name: str
    cameras: tuple[CameraSpec, ...]
    weights: Path | None = None  # None: the active model
    backend: str = DEFAULTS.backend
    params: InferenceParams = field(default_factory=InferenceParams)
    episodes: EpisodeConfig = field(default_factory=EpisodeConfig)
    heartbeat_s: float = 5.0
    stall_after_s: float = 5.0
    max_batch: int = 4  # frames per detector call (a fixed-batch export runs them in turn)
    blur_evidence: bool = DEFAULTS.blur_evidence
    evidence: bool = True  # write evidence frames of episodes


def default_worker_name() -> str:
    return settings().worker_name or socket.gethostname()


def _number(
    raw: dict[str, Any], key: str, default: float, lo: float, hi: float, where: str
) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
        raise ConfigError(
            f"{where}: '{key}' must be a number from {lo:g} to {hi:g}, not {value!r}."
        )
    return float(value)


def _motion(raw: Any, base: MotionConfig, where: str) -> MotionConfig:
    if raw is None:
        return base
    if isinstance(raw, bool):
        return replace(base, enabled=raw)
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: 'motion' must be true, false or a mapping.")
    unknown = set(raw) - {"enabled", "threshold", "min_area", "width", "max_skip_s"}
    if unknown:
        raise ConfigError(f"{where}: unknown motion setting(s) {', '.join(sorted(unknown))}.")
    return MotionConfig(
        enabled=bool(raw.get("enabled", base.enabled)),
        threshold=int(_number(raw, "threshold", base.threshold, 1, 255, where)),
        min_area=_number(raw, "min_area", base.min_area, 0.0, 1.0, where),
        width=int(_number(raw, "width", base.width, 16, 1920, where)),
        max_skip_s=_number(raw, "max_skip_s", base.max_skip_s, 0.0, 3600.0, where),
    )


WORKER_SETTINGS = frozenset(
    {
        "worker",
        "backend",
        "weights",
        "imgsz",
        "conf",
        "iou",
        "fps",
        "heartbeat_s",
        "stall_after_s",
        "max_batch",
        "motion",
        "cameras",
        "min_duration_s",
        "grace_s",
        "blur_evidence",
        "evidence",
    }
)
CAMERA_SETTINGS = frozenset({"name", "source", "station", "fps", "loop", "motion"})


def _camera(c: object, cw: str, folder: Path, fps: float, motion: MotionConfig) -> CameraSpec:
    """One entry of ``cameras:``; ``cw`` says where it is for the error messages."""
    if not isinstance(c, dict):
        raise ConfigError(f"{cw}: expected a mapping with name, station and source.")
    unknown = set(c) - CAMERA_SETTINGS
    if unknown:
        raise ConfigError(f"{cw}: unknown setting(s) {', '.join(sorted(unknown))}.")
    cam_name = str(c.get("name") or "").strip()
    source = str(c.get("source") or "").strip()
    if not cam_name or "/" in cam_name or len(cam_name) > 80:
        raise ConfigError(f"{cw}: give it a 'name' (1-80 characters, no '/').")
    if not source:
        raise ConfigError(
            f"{cw} ({cam_name}): give its 'source' (a camera URL, env:VARIABLE or a video file)."
        )
    if not is_url(source):
        path = Path(source).expanduser()
        source = str(path if path.is_absolute() else (folder / path).resolve())
    station = str(c.get("station") or DEFAULT_STATION).strip()[:80] or DEFAULT_STATION
    return CameraSpec(
        cam_name,
        source,
        station,
        _number(c, "fps", fps, 0.1, MAX_FPS, cw),
        bool(c.get("loop", False)),
        _motion(c.get("motion"), motion, cw),
    )


def _cameras(
    raw: dict[str, Any], where: str, folder: Path, fps: float, motion: MotionConfig
) -> tuple[CameraSpec, ...]:
    """The cameras of a worker, each named once."""
    cams_raw = raw.get("cameras")
    if not isinstance(cams_raw, list) or not cams_raw:
        raise ConfigError(f"{where}: list the cameras under 'cameras:' (name, station, source).")
    cameras = tuple(
        _camera(c, f"{where}, camera {i}", folder, fps, motion) for i, c in enumerate(cams_raw, 1)
    )
    names = [c.name for c in cameras]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"{where}: camera names must be unique: {', '.join(dupes)}.")
    return cameras


def parse_config(raw: dict[str, Any], folder: Path, worker: str | None = None) -> WorkerConfig:
    """A :class:`WorkerConfig` from the mapping of a ``cameras.yaml`` in ``folder``."""
    where = "cameras.yaml"
    unknown = set(raw) - WORKER_SETTINGS
    if unknown:
        raise ConfigError(f"{where}: unknown setting(s) {', '.join(sorted(unknown))}.")
    s = settings()
    name = check_worker_name(worker or str(raw.get("worker") or default_worker_name()))
    backend = str(raw.get("backend", DEFAULTS.backend))
    if backend not in BACKENDS:
        raise ConfigError(f"{where}: backend must be one of {', '.join(BACKENDS)}.")
    weights = raw.get("weights")
    params = InferenceParams(
        conf=_number(raw, "conf", s.conf, 0.01, 0.99, where),
        iou=_number(raw, "iou", s.iou, 0.05, 0.99, where),
        imgsz=int(_number(raw, "imgsz", s.imgsz, 64, 4096, where)),
    )
    fps = _number(raw, "fps", 5.0, 0.1, MAX_FPS, where)
    cameras = _cameras(raw, where, folder, fps, _motion(raw.get("motion"), MotionConfig(), where))
    return WorkerConfig(
        name=name,
        cameras=cameras,
        weights=(
            Path(weights) if Path(str(weights)).is_absolute() else (folder / str(weights)).resolve()
        )
        if weights
        else None,
        backend=backend,
        params=params,
        episodes=EpisodeConfig(
            _number(raw, "min_duration_s", DEFAULTS.min_duration_s, 0, 600, where),
            _number(raw, "grace_s", DEFAULTS.grace_s, 0, 600, where),
        ),
        heartbeat_s=_number(raw, "heartbeat_s", 5.0, 0.2, 600, where),
        stall_after_s=_number(raw, "stall_after_s", 5.0, 0.5, 3600, where),
        max_batch=int(_number(raw, "max_batch", 4, 1, 64, where)),
        blur_evidence=bool(raw.get("blur_evidence", DEFAULTS.blur_evidence)),
        evidence=bool(raw.get("evidence", True)),
    )


def load_config(path: Path, worker: str | None = None) -> WorkerConfig:
    """Read ``cameras.yaml`` (no YAML aliases, size-capped); raises :class:`ConfigError`."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"Worker configuration not found: {path}.")
    try:
        raw = load_yaml(path)
    except DatasetError as exc:
        raise ConfigError(f"{path.name} cannot be read as a worker configuration: {exc}") from None
    return parse_config(raw, Path(path).resolve().parent, worker)
