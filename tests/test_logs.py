"""Log set-up: records follow the current stderr."""

from __future__ import annotations

import io
import logging
import sys

from core.logs import StderrHandler


def test_the_stderr_handler_follows_a_swapped_stderr(monkeypatch):
    handler = StderrHandler()
    first = io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    record = logging.LogRecord("gw", logging.WARNING, __file__, 1, "first", None, None)
    handler.emit(record)
    first.close()  # the stream of the first set-up is gone, as after a captured CLI call
    second = io.StringIO()
    monkeypatch.setattr(sys, "stderr", second)
    handler.emit(logging.LogRecord("gw", logging.WARNING, __file__, 1, "second", None, None))
    assert second.getvalue() == "second\n"
