"""Running the command line in this process (fast) or as ``python -m core`` (the real thing)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def json_lines(self) -> list[Any]:
        """Every stdout line parsed as JSON (fails if any line is not JSON)."""
        return [json.loads(line) for line in self.out.splitlines() if line.strip()]

    @property
    def json(self) -> Any:
        return json.loads(self.out)

    @property
    def err_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]


def cli(
    capfd: pytest.CaptureFixture[str],
    *argv: str,
    stdin: str | None = None,
    monkeypatch: pytest.MonkeyPatch | None = None,
) -> Result:
    """``core.cli.main(argv)`` in this process; stdout/stderr as file descriptors saw them."""
    from core.cli import main

    capfd.readouterr()  # drop what earlier steps printed
    if stdin is not None:
        assert monkeypatch is not None
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = main([str(a) for a in argv])
    out, err = capfd.readouterr()
    return Result(code, out, err)


def cli_process(
    *argv: str,
    home: Path,
    stdin: str | None = None,
    timeout: float = 600,
    env: dict[str, str] | None = None,
) -> Result:
    """``python -m core ARGV`` in its own process with ``GLOVEWATCH_HOME=home``."""
    full_env = {k: v for k, v in os.environ.items() if k != "GLOVEWATCH_DB_URL"}
    full_env.update(GLOVEWATCH_HOME=str(home), **(env or {}))
    r = subprocess.run(
        [sys.executable, "-m", "core", *map(str, argv)],
        cwd=ROOT,
        env=full_env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return Result(r.returncode, r.stdout, r.stderr)
