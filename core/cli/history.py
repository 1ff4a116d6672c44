"""Commands for compliance history: report, review, export-reviewed, retention, synth,
bench-history."""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import asdict
from pathlib import Path

from core.cli.common import Subparsers, add_filter_args, add_json, emit, history_filter, say, store
from core.config import settings
from core.errors import EXIT_INPUT, EXIT_OK, GloveWatchError
from core.storage.filters import REVIEW_STATES


def cmd_report(args: argparse.Namespace) -> int:
    from core.analytics.reading import clamp_for
    from core.analytics.reports import episodes_csv, report_name, write_history_xlsx

    st = store()
    clamped = clamp_for(st, history_filter(args))  # the data held; beyond five years: refused
    f = clamped.filter
    if clamped.note:
        say(clamped.note)
    out = Path(args.out) if args.out else Path(report_name(f))
    write_history_xlsx(out, st, f)
    if args.csv:
        Path(args.csv).write_text(episodes_csv(st, f))
    if args.json:
        emit({"xlsx": str(out), "csv": args.csv, "filter": f.describe()})
    else:
        say(f"report for {f.describe()} -> {out}")
    return EXIT_OK


def cmd_retention(args: argparse.Namespace) -> int:
    from core.analytics.retention import run_retention

    rep = run_retention(store(), args.days, by=settings().user or None)
    emit(asdict(rep)) if args.json else say(rep.summary())
    return EXIT_OK


def cmd_review(args: argparse.Namespace) -> int:
    from core.analytics.review import set_review

    entry = set_review(
        store(), args.episode, args.state, args.comment or "", args.by or settings().user or ""
    )
    say(
        f"episode {entry.event_id}: {entry.review} by {entry.reviewed_by or '-'} at "
        f"{entry.reviewed_at}"
    )
    return EXIT_OK


def cmd_export_reviewed(args: argparse.Namespace) -> int:
    from core.analytics.review import export_reviewed

    rep = export_reviewed(store(), Path(args.out), dismissed_as=args.dismissed_as)
    if args.json:
        emit(
            {
                "path": str(rep.path),
                "images": rep.images,
                "boxes": rep.boxes,
                "skipped": rep.skipped,
            }
        )
    else:
        say(
            f"{rep.images} images, {rep.boxes} boxes -> {rep.path}; {len(rep.skipped)} "
            "episodes skipped"
        )
        for eid, why in rep.skipped[:20]:
            say(f"  skipped episode {eid}: {why}")
    return EXIT_OK


def cmd_synth(args: argparse.Namespace) -> int:
    from core.analytics.demo import demo_path
    from core.analytics.synth import generate
    from core.storage import open_store

    target = demo_path() if args.demo else Path(args.out) if args.out else None
    if target is None:
        raise GloveWatchError("Give --out FILE.sqlite, or --demo for the app's demo data.")
    rep = generate(
        open_store(str(target)),
        stations=args.stations,
        days=args.days,
        seconds_rows=args.rows,
        seed=args.seed,
    )
    if args.json:
        emit({**asdict(rep), "path": str(target)})
    else:
        say(
            f"{target.name}: {rep.stations} stations, {rep.start} to {rep.end}, "
            f"{rep.coverage_seconds} per-second rows, {rep.coverage_hourly} hourly rows, "
            f"{rep.events} episodes in {rep.seconds:.1f} s"
        )
        if args.demo:
            say("Open the History page and switch on 'Demo data' to look at it.")
    return EXIT_OK


def cmd_bench_history(args: argparse.Namespace) -> int:
    from core.analytics import history
    from core.analytics.synth import generate
    from core.storage import open_store

    if args.db and args.db_url:
        raise GloveWatchError("Give --db (an existing SQLite store) or --db-url, not both.")
    with tempfile.TemporaryDirectory(prefix="gw-bench-") as tmp:
        if args.db_url:
            st = open_store(args.db_url)
            # an empty database is filled; one that holds data is measured as it is
            gen = (
                generate(st, stations=args.stations, days=args.days, seconds_rows=args.rows)
                if st.bulk.is_empty()
                else None
            )
        else:
            db = Path(args.db) if args.db else Path(tmp) / "bench.sqlite"
            st = open_store(str(db))
            gen = (
                None
                if args.db
                else generate(st, stations=args.stations, days=args.days, seconds_rows=args.rows)
            )
        where, backend = st.db.where, st.db.dialect
        counts = st.history.table_counts(
            ("coverage_seconds", "coverage_hourly", "events", "results")
        )
        f = history.default_filter(st, days=args.days)
        timings = history.bench(st, f)
        st.db.dispose()
    slowest = max(t.ms for t in timings)
    out = {
        "db": where if args.db or args.db_url else "temporary",
        "backend": backend,
        "rows": counts,
        "filter": f.describe(),
        "generate_s": round(gen.seconds, 1) if gen else None,
        "queries_ms": {t.name: t.ms for t in timings},
        "slowest_ms": slowest,
        "target_ms": 1000,
        "ok": slowest < 1000,
        "note": "figures are read from the roll-ups (coverage_daily, coverage_hourly, "
        "results_hourly), not the per-second rows",
    }
    if args.json:
        emit(out)
    else:
        for t in timings:
            say(f"{t.name:<16} {t.ms:8.1f} ms  ({t.rows} rows)")
        say(str(out["rows"]))
    return EXIT_OK if out["ok"] else EXIT_INPUT


def register(sub: Subparsers) -> None:
    s = settings()
    rp = sub.add_parser("report", help="Excel compliance report (and CSV of episodes)")
    add_filter_args(rp)
    rp.add_argument(
        "--out", metavar="FILE.xlsx", help="default: a name that says the period and filters"
    )
    rp.add_argument("--csv", metavar="FILE.csv", help="also write the episode table as CSV")
    add_json(rp)
    rp.set_defaults(func=cmd_report)

    rt = sub.add_parser("retention", help="delete evidence and raw rows older than N days")
    rt.add_argument("--days", type=int, default=s.retention_days)
    add_json(rt)
    rt.set_defaults(func=cmd_retention)

    rv = sub.add_parser("review", help="mark an episode confirmed, dismissed or unreviewed")
    rv.add_argument("episode", type=int, metavar="EPISODE_ID")
    rv.add_argument("state", choices=REVIEW_STATES)
    rv.add_argument("--comment")
    rv.add_argument("--by", help="reviewer name (default $GLOVEWATCH_USER)")
    rv.set_defaults(func=cmd_review, json=False)

    ex = sub.add_parser("export-reviewed", help="reviewed evidence as a YOLO data set")
    ex.add_argument("--out", required=True, metavar="DIR")
    ex.add_argument("--dismissed-as", choices=("glove", "background"), default="glove")
    add_json(ex)
    ex.set_defaults(func=cmd_export_reviewed)

    sy = sub.add_parser("synth", help="fill a store with a synthetic year of monitoring")
    target = sy.add_mutually_exclusive_group()
    target.add_argument("--out", metavar="DB", help="a new SQLite file to fill")
    target.add_argument(
        "--demo",
        action="store_true",
        help="fill the app's demo store (History page, 'Demo data' switch)",
    )
    sy.add_argument("--stations", type=int, default=20)
    sy.add_argument("--days", type=int, default=365)
    sy.add_argument("--rows", type=int, default=3_000_000, help="raw per-second rows")
    sy.add_argument("--seed", type=int, default=0)
    add_json(sy)
    sy.set_defaults(func=cmd_synth)

    bh = sub.add_parser("bench-history", help="time every History query on a big store")
    bh.add_argument(
        "--rows", type=int, default=3_000_000, help="per-second rows of the generated store"
    )
    bh.add_argument("--stations", type=int, default=20)
    bh.add_argument("--days", type=int, default=365)
    bh.add_argument("--db", help="an existing SQLite store instead of a generated one")
    bh.add_argument(
        "--db-url",
        metavar="URL",
        help="a database to measure (e.g. postgresql://...): filled with the "
        "synthetic data when empty, measured as it is otherwise",
    )
    add_json(bh)
    bh.set_defaults(func=cmd_bench_history)
