"""GloveWatch configuration: the one place where paths, defaults and offline settings live.

Everything is derived from environment variables with defaults that work on a fresh clone with
no network. Nothing here imports Streamlit or Ultralytics.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_WEIGHTS = PROJECT_ROOT / "weights" / "gloves-yolo11n.pt"
MODELS_DIR = PROJECT_ROOT / "models"


@dataclass(frozen=True)
class Shift:
    """A named shift; ``end`` before ``start`` means the shift crosses midnight."""

    name: str
    start: str  # "HH:MM"
    end: str  # "HH:MM"


DEFAULT_SHIFTS: tuple[Shift, ...] = (
    Shift("Early", "06:00", "14:00"),
    Shift("Late", "14:00", "22:00"),
    Shift("Night", "22:00", "06:00"),
)


@dataclass(frozen=True)
class Settings:
    """Resolved settings for one process. Build with :func:`settings`."""

    home: Path
    default_weights: Path
    conf: float = 0.25
    iou: float = 0.7
    imgsz: int = 640
    retention_days: int = 90
    shifts: tuple[Shift, ...] = DEFAULT_SHIFTS
    ice_servers: list[dict] = field(default_factory=list)
    webhook_url: str = ""
    torch_threads: int | None = None  # None: all cores for PyTorch, 1 beside ONNX/OpenVINO
    dataset_max_mb: int = 8192  # zip import limits
    dataset_max_files: int = 200_000
    train_min_free_mb: int = 1024  # free disk a training run needs to start
    user: str = ""  # who promotes models / reviews episodes by default ('' = login name)

    @property
    def db_path(self) -> Path:
        return self.home / "glovewatch.sqlite"

    @property
    def batch_dir(self) -> Path:
        """Annotated files and tables of batch sessions."""
        return self.home / "batch"

    @property
    def evidence_dir(self) -> Path:
        """Evidence frames and crops of violation events."""
        return self.home / "evidence"

    @property
    def runs_dir(self) -> Path:
        """Training runs (one folder per run)."""
        return self.home / "runs"

    @property
    def datasets_dir(self) -> Path:
        """Imported data sets."""
        return self.home / "datasets"

    @property
    def uploads_dir(self) -> Path:
        """User-uploaded weights files, kept by content hash."""
        return self.home / "uploads"

    @property
    def exports_dir(self) -> Path:
        """ONNX / OpenVINO exports of model files, cached by model hash."""
        return self.home / "exports"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return float(raw) if raw else default


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw else default


def _shifts_from_env() -> tuple[Shift, ...]:
    # GLOVEWATCH_SHIFTS="Early=06:00-14:00,Late=14:00-22:00,Night=22:00-06:00"
    raw = os.environ.get("GLOVEWATCH_SHIFTS", "").strip()
    if not raw:
        return DEFAULT_SHIFTS
    shifts = []
    for part in raw.split(","):
        name, _, span = part.partition("=")
        start, _, end = span.partition("-")
        shifts.append(Shift(name.strip(), start.strip(), end.strip()))
    return tuple(shifts)


def _ice_servers_from_env() -> list[dict]:
    # GLOVEWATCH_ICE_SERVERS='[{"urls": ["turn:turn.example:3478"], "username": "u", "credential": "p"}]'
    raw = os.environ.get("GLOVEWATCH_ICE_SERVERS", "").strip()
    return json.loads(raw) if raw else []


def settings() -> Settings:
    """Read the settings from the environment (cheap; call it where needed, don't cache)."""
    home = Path(os.environ.get("GLOVEWATCH_HOME") or PROJECT_ROOT / "data").expanduser().resolve()
    weights = os.environ.get("GLOVEWATCH_WEIGHTS")
    return Settings(
        home=home,
        default_weights=Path(weights).expanduser().resolve() if weights else DEFAULT_WEIGHTS,
        conf=_env_float("GLOVEWATCH_CONF", 0.25),
        iou=_env_float("GLOVEWATCH_IOU", 0.7),
        imgsz=_env_int("GLOVEWATCH_IMGSZ", 640),
        retention_days=_env_int("GLOVEWATCH_RETENTION_DAYS", 90),
        shifts=_shifts_from_env(),
        ice_servers=_ice_servers_from_env(),
        webhook_url=os.environ.get("GLOVEWATCH_WEBHOOK_URL", ""),
        torch_threads=_env_int("GLOVEWATCH_TORCH_THREADS", 0) or None,
        dataset_max_mb=_env_int("GLOVEWATCH_DATASET_MAX_MB", 8192),
        dataset_max_files=_env_int("GLOVEWATCH_DATASET_MAX_FILES", 200_000),
        train_min_free_mb=_env_int("GLOVEWATCH_TRAIN_MIN_FREE_MB", 1024),
        user=os.environ.get("GLOVEWATCH_USER", ""),
    )


def ensure_home(s: Settings | None = None) -> Settings:
    """Create the data folders; raise ``PermissionError`` with a clear message if unwritable."""
    s = s or settings()
    try:
        for d in (s.home, s.batch_dir, s.evidence_dir, s.runs_dir, s.datasets_dir,
                  s.uploads_dir, s.exports_dir, s.logs_dir):
            d.mkdir(parents=True, exist_ok=True)
        probe = s.home / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise PermissionError(
            f"The data folder {s.home} is not writable ({exc.strerror or exc}). "
            "Set GLOVEWATCH_HOME to a folder you can write to."
        ) from exc
    return s


def _decline_openvino_telemetry() -> None:
    """What OpenVINO's ``opt_in_out --opt_out`` does, unless the user already chose.

    Without a consent file OpenVINO's converters count as consented and try to send usage
    data on every export; offline that is dozens of failing look-ups.
    """
    try:
        from openvino_telemetry.utils.opt_in_checker import ConsentCheckResult, OptInChecker
    except ImportError:
        return
    checker = OptInChecker()
    try:
        if checker.consent_file_base_dir() and not os.path.exists(checker.consent_file()):
            checker.update_result(ConsentCheckResult.DECLINED)
    except OSError:
        pass  # an unwritable home: nothing we can record


def apply_offline_env() -> None:
    """Make Ultralytics, OpenVINO and friends work without the internet.

    Must run before ``ultralytics`` is imported; ``core/__init__`` calls it. Ultralytics wants
    to download Arial fonts for plots: we give it matplotlib's DejaVuSans under those names in a
    config folder the project owns.
    """
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_AUTOINSTALL", "false")
    os.environ.setdefault("YOLO_VERBOSE", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    _decline_openvino_telemetry()
    cfg_dir = Path(os.environ.get("YOLO_CONFIG_DIR") or PROJECT_ROOT / ".yolo-config")
    os.environ["YOLO_CONFIG_DIR"] = str(cfg_dir)
    fonts = cfg_dir / "Ultralytics"
    targets = [fonts / "Arial.ttf", fonts / "Arial.Unicode.ttf"]
    if all(t.exists() for t in targets):
        return
    try:
        import matplotlib

        src = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
        fonts.mkdir(parents=True, exist_ok=True)
        for t in targets:
            if not t.exists():
                shutil.copyfile(src, t)
    except (ImportError, OSError):
        pass  # plots then fall back to a font download attempt, which only warns offline
