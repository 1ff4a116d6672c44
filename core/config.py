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

from core.errors import ConfigError, DataFolderError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_WEIGHTS = PROJECT_ROOT / "weights" / "gloves-yolo11n-wide.pt"
MODELS_DIR = PROJECT_ROOT / "models"
DEFAULT_STATION = "default"
# Where trial runs (Batch photos tried out) are recorded: kept out of every plant figure, and
# no station can be given this name.
TRIAL_STATION = "(trial run)"


@dataclass(frozen=True)
class Defaults:
    """Defaults the pages and the command line share (one place, so they never disagree)."""

    # Episodes: a hand seen for less than min_duration_s is noise; gaps up to grace_s
    # (occlusion, missed detections) are merged; a new track overlapping a lost one by
    # rematch_iou continues its episode.
    min_duration_s: float = 1.0
    grace_s: float = 2.0
    rematch_iou: float = 0.3
    # Alerts: at most one per station per cooldown (critical ones are never held back by a
    # warning's cooldown).
    cooldown_s: float = 30.0
    # Live: OpenVINO is the fastest CPU backend; a stream that sends nothing for
    # idle_timeout_s ends its session; a source nobody looks at stops after viewer_timeout_s.
    backend: str = "openvino"
    idle_timeout_s: float = 10.0
    viewer_timeout_s: float = 30.0
    blur_evidence: bool = True
    # Coverage: time a frame may account for at most, so a stalled stream is not "watched".
    max_frame_gap_s: float = 1.0


DEFAULTS = Defaults()


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
    webhook_secret: str = ""  # signs each webhook body (HMAC-SHA256) when set
    torch_threads: int | None = None  # None: all cores for PyTorch, 1 beside ONNX/OpenVINO
    dataset_max_mb: int = 4096  # zip import limits: unpacked size in all, per file, files
    dataset_max_file_mb: int = 64
    dataset_max_files: int = 200_000
    train_min_free_mb: int = 1024  # free disk a training run needs to start
    user: str = ""  # who promotes models / reviews episodes by default ('' = login name)
    db_url: str = ""  # SQLAlchemy URL of the store; '' = the SQLite file in the data folder
    oidc_role_claim: str = "groups"  # single sign-on: the claim that carries the role
    oidc_role_map: str = ""  # "claim value=role,..." e.g. "gw-admins=admin,gw-staff=viewer"
    base_data: str = ""  # the data set the base model was trained on (site fine-tunes)
    session_hours: float = 8.0  # a sign-in lasts at most this long
    idle_minutes: float = 60.0  # and ends after this long without a page view
    mqtt_url: str = ""  # camera workers' broker, e.g. mqtt://127.0.0.1:1883; '' = no broker
    worker_name: str = ""  # this camera worker's name ('' = the host name)

    @property
    def db_path(self) -> Path:
        """The embedded SQLite store (used when ``db_url`` is empty)."""
        return self.home / "glovewatch.sqlite"

    @property
    def store_url(self) -> str:
        """The store's SQLAlchemy URL: ``GLOVEWATCH_DB_URL`` or the SQLite file."""
        return self.db_url or f"sqlite:///{self.db_path}"

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

    @property
    def outbox_dir(self) -> Path:
        """Camera workers' outboxes: messages not yet acknowledged by the ingester."""
        return self.home / "outbox"


def _env_number(name: str, default: float, kind: type) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return kind(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a {kind.__name__}; unset it or fix it.") from None


def _env_float(name: str, default: float) -> float:
    return float(_env_number(name, default, float))


def _env_int(name: str, default: int) -> int:
    return int(_env_number(name, default, int))


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
    # GLOVEWATCH_ICE_SERVERS='[{"urls": ["turn:turn.example:3478"], "username": "u",
    #                           "credential": "p"}]'
    raw = os.environ.get("GLOVEWATCH_ICE_SERVERS", "").strip()
    try:
        servers = json.loads(raw) if raw else []
    except ValueError:
        raise ConfigError(
            "GLOVEWATCH_ICE_SERVERS is not valid JSON (a list of objects with 'urls')."
        ) from None
    if not isinstance(servers, list):
        raise ConfigError("GLOVEWATCH_ICE_SERVERS must be a JSON list.")
    return servers


def settings() -> Settings:
    """Read the settings from the environment: once, at an entry point, which passes on what
    each layer needs (lower layers take values, not the environment)."""
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
        webhook_url=os.environ.get("GLOVEWATCH_WEBHOOK_URL", "").strip(),
        webhook_secret=os.environ.get("GLOVEWATCH_WEBHOOK_SECRET", ""),
        torch_threads=_env_int("GLOVEWATCH_TORCH_THREADS", 0) or None,
        dataset_max_mb=_env_int("GLOVEWATCH_DATASET_MAX_MB", 4096),
        dataset_max_file_mb=_env_int("GLOVEWATCH_DATASET_MAX_FILE_MB", 64),
        dataset_max_files=_env_int("GLOVEWATCH_DATASET_MAX_FILES", 200_000),
        train_min_free_mb=_env_int("GLOVEWATCH_TRAIN_MIN_FREE_MB", 1024),
        user=os.environ.get("GLOVEWATCH_USER", ""),
        db_url=os.environ.get("GLOVEWATCH_DB_URL", "").strip(),
        oidc_role_claim=os.environ.get("GLOVEWATCH_OIDC_ROLE_CLAIM", "groups").strip(),
        oidc_role_map=os.environ.get("GLOVEWATCH_OIDC_ROLE_MAP", "").strip(),
        base_data=os.environ.get("GLOVEWATCH_BASE_DATA", "").strip(),
        session_hours=_env_float("GLOVEWATCH_SESSION_HOURS", 8.0),
        idle_minutes=_env_float("GLOVEWATCH_IDLE_MINUTES", 60.0),
        mqtt_url=os.environ.get("GLOVEWATCH_MQTT_URL", "").strip(),
        worker_name=os.environ.get("GLOVEWATCH_WORKER_NAME", "").strip(),
    )


def ensure_home(s: Settings | None = None) -> Settings:
    """Create the data folders; raise :class:`DataFolderError` if they cannot be written."""
    s = s or settings()
    try:
        for d in (
            s.home,
            s.batch_dir,
            s.evidence_dir,
            s.runs_dir,
            s.datasets_dir,
            s.uploads_dir,
            s.exports_dir,
            s.logs_dir,
        ):
            d.mkdir(parents=True, exist_ok=True)
        probe = s.home / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise DataFolderError(
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
        if checker.consent_file_base_dir() and not Path(checker.consent_file()).exists():
            checker.update_result(ConsentCheckResult.DECLINED)
    except OSError:
        pass  # an unwritable home: nothing we can record


def apply_offline_environment() -> None:
    """Make Ultralytics, OpenVINO and friends work without the internet, and turn on the safe
    weights loader (``ULTRALYTICS_SAFE_LOAD``, see :mod:`core.vision.weights`).

    Ultralytics reads these when it is imported, so every entry point calls this first: the
    command line (:func:`core.cli.main`), the pages (:func:`ui.widgets.page_setup`), the training
    worker and the test suite. Importing ``core`` does not. Ultralytics wants
    to download Arial fonts for plots: we give it matplotlib's DejaVuSans under those names in a
    config folder the project owns.
    """
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_AUTOINSTALL", "false")
    os.environ.setdefault("YOLO_VERBOSE", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    # weights_only unpickling for every checkpoint Ultralytics loads (core.vision.weights)
    os.environ["ULTRALYTICS_SAFE_LOAD"] = "1"
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
