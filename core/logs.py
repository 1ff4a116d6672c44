"""Logging set-up shared by the app, the CLI and the training worker.

Every record passes :class:`RedactingFilter`, so a camera password or a webhook token in a
message or an exception never reaches a log file.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from core.config import settings
from core.errors import GloveWatchError
from core.text import redact_text

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class RedactingFilter(logging.Filter):
    """Masks credentials in the rendered message (and drops args once rendered)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True
        clean = redact_text(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[1] is not None:
            text = redact_text(str(record.exc_info[1]))
            if text != str(record.exc_info[1]):
                record.exc_text = f"{type(record.exc_info[1]).__name__}: {text}"
                record.exc_info = None
        return True


class StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at each record, not the one of the first set-up:
    a process that swaps stderr later (a captured CLI call, a server's redirect) would
    otherwise log into a closed stream."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def setup_logging(level: int = logging.INFO) -> None:
    """Log to stderr and to ``<GLOVEWATCH_HOME>/logs/glovewatch.log`` (idempotent)."""
    root = logging.getLogger()
    if getattr(root, "_glovewatch", False):
        return
    root.setLevel(level)
    redact = RedactingFilter()
    err = StderrHandler()
    err.setFormatter(logging.Formatter(_FORMAT))
    err.addFilter(redact)
    root.addHandler(err)
    try:
        logs = settings().logs_dir
        logs.mkdir(parents=True, exist_ok=True)
        fh = logging.FileHandler(logs / "glovewatch.log")
        fh.setFormatter(logging.Formatter(_FORMAT))
        fh.addFilter(redact)
        root.addHandler(fh)
    except (OSError, GloveWatchError):  # an unwritable data folder is reported where used
        pass
    root._glovewatch = True  # type: ignore[attr-defined]
