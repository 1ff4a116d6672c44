"""The command line, ``python -m core``: every feature the pages offer, scriptable.

One module per command group registers its subcommands. Every command starts the same way
(data folder, store, crash recovery) and ends the same way: a :class:`GloveWatchError` is one
line on stderr and its exit code (:mod:`core.errors`), never a traceback. With ``--json`` a
command prints nothing but JSON on stdout: library output goes to stderr while it runs.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Callable

from core.cli import db, detection, fleet, history, live, site, training, users
from core.cli.common import json_output
from core.config import apply_offline_environment
from core.errors import GloveWatchError, exit_code
from core.logs import setup_logging

log = logging.getLogger("glovewatch.cli")

GROUPS = (detection, live, fleet, history, training, site, users, db)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m core", description="GloveWatch command line")
    sub = p.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.register(sub)
    return p


def startup() -> None:
    """What every GloveWatch process does first: the data folder, the store, and closing
    what a crashed process left open."""
    from core.events.recovery import recover
    from core.storage import open_store

    recover(open_store())


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    apply_offline_environment()  # before any command imports ultralytics
    setup_logging(logging.WARNING)
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    json_output(bool(getattr(args, "json", False)))
    # Library chatter must never mix with JSON on stdout.
    with contextlib.redirect_stdout(sys.stderr):
        try:
            startup()
            return func(args)
        except GloveWatchError as exc:
            log.debug("command failed", exc_info=True)
            print(f"glovewatch: {exc}", file=sys.__stderr__, flush=True)
            return exit_code(exc)
        except KeyboardInterrupt:
            return 130
