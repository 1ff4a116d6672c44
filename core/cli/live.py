"""Commands for cameras and stations: live, stations."""

from __future__ import annotations

import argparse
import json
import time

from core.cli.common import (
    Subparsers,
    add_inference,
    add_json,
    add_weights,
    emit,
    say,
    store,
    weights,
)
from core.config import DEFAULT_STATION, DEFAULTS, settings
from core.errors import EXIT_INPUT, EXIT_OK, EXIT_UNUSABLE
from core.storage import Store
from core.vision.detector import BACKENDS


def cmd_live(args: argparse.Namespace) -> int:
    from core.events.episodes import EpisodeConfig
    from core.pipeline.live import FrameProcessor, LiveConfig, SourceRunner
    from core.pipeline.sources import SourceStatus, is_url, shown_source
    from core.vision.detector import InferenceParams

    s = settings()
    cfg = LiveConfig(
        weights=weights(args),
        backend=args.backend,
        params=InferenceParams(conf=args.conf, iou=args.iou, imgsz=args.imgsz),
        station=args.station,
        kind="stream" if is_url(args.source) else "file",
        source=shown_source(args.source),
        episodes=EpisodeConfig(args.min_duration, args.grace),
        blur_evidence=not args.no_blur,
        cooldown_s=args.cooldown,
        webhook_url=args.webhook if args.webhook is not None else s.webhook_url,
        webhook_secret=s.webhook_secret,
        user=s.user or None,
    )
    proc = FrameProcessor(cfg)
    runner = SourceRunner(args.source, proc, realtime=not args.fast).start()
    last = None
    try:
        while runner.alive:
            time.sleep(1.0)
            status, message = runner.status()
            if (status, message) != last and not args.json:
                say(f"[{status}] {message}")
            last = (status, message)
    except KeyboardInterrupt:
        runner.stop()
    proc.alerter.wait_sent(10)
    snap = proc.snapshot()
    status, message = runner.status()
    out = {
        "status": str(status),
        "message": message,
        "session_id": snap.session_id,
        "frames": snap.frames,
        "dropped": snap.dropped,
        "episodes": snap.episodes,
        "compliance": snap.compliance,
        "alerts": [a.payload() for a in snap.alerts],
    }
    if args.json:
        emit(out)
    else:
        say(
            f"session {snap.session_id}: {snap.frames} frames ({snap.dropped} dropped), "
            f"{snap.episodes} episodes, alerts {len(snap.alerts)}"
        )
    return EXIT_INPUT if status is SourceStatus.FAILED else EXIT_OK


def _list_stations(st: Store, as_json: bool) -> int:
    from core.events.stations import current_rule, list_stations

    rules = [current_rule(st, n) for n in list_stations(st)]
    if as_json:
        emit(
            [
                {
                    "station": r.station,
                    "version": r.version,
                    "polarity": str(r.polarity),
                    "allowed": list(r.allowed),
                    "zones": [z.to_text() for z in r.zones],
                    "tiles": r.tiles or None,
                }
                for r in rules
            ]
        )
    for r in rules if not as_json else ():
        say(f"{r.station}: {r.describe()}" + "".join(f"\n  zone {z.to_text()}" for z in r.zones))
    return EXIT_OK


def _show_station(st: Store, name: str, as_json: bool) -> int:
    from core.events.stations import rule_history

    hist = rule_history(st, name)
    if as_json:
        emit(
            [
                {
                    "version": h.rule.version,
                    "created_at": h.created_at,
                    "author": h.author,
                    "rule": json.loads(h.rule.to_json()),
                }
                for h in hist
            ]
        )
    for h in hist if not as_json else ():
        say(f"v{h.rule.version} {h.created_at} by {h.author or '-'}: {h.rule.describe()}")
    return EXIT_OK


def _set_station(st: Store, args: argparse.Namespace) -> int:
    from core.events.rules import Polarity, StationRule, parse_zones
    from core.events.stations import save_rule

    rule = save_rule(
        st,
        StationRule(
            args.name,
            polarity=Polarity(args.polarity),
            allowed=tuple(a.strip() for a in (args.allowed or "").split(",") if a.strip()),
            zones=parse_zones("\n".join(args.zone or [])),
            tiles=args.tiles or "",
        ),
        author=args.by or settings().user or None,
    )
    if args.json:
        emit({"station": rule.station, "version": rule.version})
    else:
        say(f"{rule.station}: saved rule v{rule.version}")
    return EXIT_OK


def cmd_stations(args: argparse.Namespace) -> int:
    """List, show, set or delete station rules."""
    from core.events.stations import delete_station

    st = store()
    if args.action == "list":
        return _list_stations(st, args.json)
    if not args.name:
        say(f"give the station name: python -m core stations {args.action} NAME")
        return EXIT_UNUSABLE
    if args.action == "show":
        return _show_station(st, args.name, args.json)
    if args.action == "delete":
        delete_station(st, args.name, args.by)
        return EXIT_OK
    return _set_station(st, args)


def register(sub: Subparsers) -> None:
    lv = sub.add_parser("live", help="watch a camera URL or replay a video file, log episodes")
    lv.add_argument(
        "source",
        metavar="URL_OR_FILE",
        help="rtsp://..., http(s)://..., env:VARIABLE (a URL kept in the "
        "environment) or a video file",
    )
    lv.add_argument("--station", default=DEFAULT_STATION)
    add_weights(lv)
    lv.add_argument("--backend", choices=BACKENDS, default=DEFAULTS.backend)
    add_inference(lv)
    lv.add_argument(
        "--min-duration",
        type=float,
        default=DEFAULTS.min_duration_s,
        help="seconds a hand must offend to be an episode",
    )
    lv.add_argument(
        "--grace",
        type=float,
        default=DEFAULTS.grace_s,
        help="seconds of gap merged into one episode",
    )
    lv.add_argument(
        "--cooldown",
        type=float,
        default=DEFAULTS.cooldown_s,
        help="seconds between alerts of a station",
    )
    lv.add_argument("--webhook", help="POST alerts here (default GLOVEWATCH_WEBHOOK_URL)")
    lv.add_argument("--no-blur", action="store_true", help="store evidence unredacted")
    lv.add_argument("--fast", action="store_true", help="file: every frame, not real time")
    add_json(lv)
    lv.set_defaults(func=cmd_live)

    sn = sub.add_parser("stations", help="list, show, set or delete station rules and zones")
    sn.add_argument("action", choices=("list", "show", "set", "delete"))
    sn.add_argument("name", nargs="?")
    sn.add_argument(
        "--polarity", choices=("gloves_required", "no_gloves"), default="gloves_required"
    )
    sn.add_argument("--allowed", help="comma-separated glove classes allowed (default any)")
    sn.add_argument(
        "--zone",
        action="append",
        metavar="'NAME: x,y x,y x,y'",
        help="danger zone in 0..1 image coordinates (repeatable)",
    )
    sn.add_argument(
        "--tiles",
        metavar="SIZE[:OVERLAP[:nms|wbf]]",
        help="tiled inference for wide views at this station, e.g. 320:0.25",
    )
    sn.add_argument("--by", help="author of this rule version")
    add_json(sn)
    sn.set_defaults(func=cmd_stations)
