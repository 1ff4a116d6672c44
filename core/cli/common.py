"""Pieces every command group shares: JSON output, the store, argument helpers."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from core.config import settings
from core.errors import GloveWatchError, TilingError
from core.storage import Store, open_store
from core.storage.filters import REVIEW_STATES, SEVERITIES, HistoryFilter
from core.vision.tiling import TileSpec

Subparsers = Any  # argparse's private _SubParsersAction


def emit(obj: Any) -> None:
    """One JSON document on the real stdout (library chatter goes to stderr meanwhile)."""
    print(json.dumps(obj, default=str), file=sys.__stdout__, flush=True)


_json_only = False  # set per command by main(): with --json, stdout carries JSON only


def json_output(on: bool) -> None:
    """Whether the running command prints JSON (``--json``): then :func:`say` uses stderr."""
    global _json_only
    _json_only = on


def say(text: str) -> None:
    """A line for people on the real stdout (on stderr while a command prints JSON)."""
    print(text, file=sys.__stderr__ if _json_only else sys.__stdout__, flush=True)


def store() -> Store:
    return open_store()


def weights(args: argparse.Namespace) -> Path:
    """``--weights``, or the model that judges ``--station`` (its own promoted model, else
    the plant-wide one, else the shipped default)."""
    if getattr(args, "weights", None):
        return Path(args.weights)
    from core.training.registry import active_weights

    return active_weights(station=getattr(args, "station", None))


def tiles_arg(text: str) -> TileSpec | None:
    if text.lower() == "none":
        return None
    try:
        return TileSpec.parse(text)
    except TilingError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def add_json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print JSON on stdout")


def add_weights(p: argparse.ArgumentParser) -> None:
    p.add_argument("--weights", help="weights file (default: the active model)")


def add_inference(p: argparse.ArgumentParser) -> None:
    """The detection settings every detecting command shares (defaults from the settings)."""
    s = settings()
    p.add_argument("--conf", type=float, default=s.conf)
    p.add_argument("--iou", type=float, default=s.iou)
    p.add_argument("--imgsz", type=int, default=s.imgsz)


def add_filter_args(p: argparse.ArgumentParser) -> None:
    """History filters, the same as the History page's."""
    p.add_argument("--from", dest="date_from", required=True, metavar="YYYY-MM-DD")
    p.add_argument("--to", dest="date_to", required=True, metavar="YYYY-MM-DD")
    p.add_argument("--station", action="append", help="repeat for several stations")
    p.add_argument("--shift", action="append", help="repeat for several shifts")
    p.add_argument(
        "--class",
        dest="classes",
        action="append",
        metavar="CLASS",
        help="episode class (repeatable)",
    )
    p.add_argument("--severity", action="append", choices=SEVERITIES)
    p.add_argument("--review", action="append", choices=REVIEW_STATES)


def history_filter(args: argparse.Namespace) -> HistoryFilter:
    from core.analytics.history import as_date

    try:
        return HistoryFilter(
            start=as_date(args.date_from),
            end=as_date(args.date_to),
            stations=tuple(args.station or ()),
            shifts=tuple(args.shift or ()),
            classes=tuple(args.classes or ()),
            severities=tuple(args.severity or ()),
            reviews=tuple(args.review or ()),
            plant_shifts=settings().shifts,
        )
    except ValueError as exc:  # a bad date or a backwards range: one line, not a traceback
        raise GloveWatchError(str(exc)) from None
