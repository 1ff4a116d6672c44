"""Logging set-up shared by the app, the CLI and the training worker."""

from __future__ import annotations

import logging
import sys

from core.config import settings

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(level: int = logging.INFO) -> None:
    """Log to stderr and to ``<GLOVEWATCH_HOME>/logs/glovewatch.log`` (idempotent)."""
    root = logging.getLogger()
    if getattr(root, "_glovewatch", False):
        return
    root.setLevel(level)
    err = logging.StreamHandler(sys.stderr)
    err.setFormatter(logging.Formatter(_FORMAT))
    root.addHandler(err)
    try:
        logs = settings().logs_dir
        logs.mkdir(parents=True, exist_ok=True)
        fh = logging.FileHandler(logs / "glovewatch.log")
        fh.setFormatter(logging.Formatter(_FORMAT))
        root.addHandler(fh)
    except OSError as exc:  # an unwritable data folder is reported where it is used
        root.warning("log file unavailable: %s", exc)
    root._glovewatch = True  # type: ignore[attr-defined]
