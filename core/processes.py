"""Processes of this host: whether a pid still runs, and which program it is."""

from __future__ import annotations

import os
from pathlib import Path


def running_argv(pid: int) -> list[bytes] | None:
    """The command line of a live (not zombie) process, or None when it is gone.

    Where there is no /proc, a live process gives an empty list (its program is unknown).
    """
    proc = Path(f"/proc/{pid}")
    if Path("/proc/self").exists():
        try:
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
            cmdline = (proc / "cmdline").read_bytes()
        except (OSError, IndexError):
            return None
        return None if state in ("Z", "X") else cmdline.split(b"\0")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return []
    return []
