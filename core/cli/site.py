"""Commands for the on-site adaptation loop: collect, label (list, prelabel, export, import),
finetune. ``compare --station`` and ``promote --station`` live with the training commands."""

from __future__ import annotations

import argparse
from pathlib import Path

from core.cli.common import Subparsers, add_json, emit, say, store
from core.config import settings
from core.errors import EXIT_INPUT, EXIT_OK, GloveWatchError
from core.media import kind_of


def _by() -> str:
    return settings().user or "cli"


def _base(args: argparse.Namespace) -> str:
    base = args.base or settings().base_data
    if not base:
        raise GloveWatchError(
            "Give --base DATA (the base model's data set) or set GLOVEWATCH_BASE_DATA."
        )
    return base


def cmd_collect(args: argparse.Namespace) -> int:
    from core.training import site

    st = store()
    total = site.CollectReport()
    if args.reviewed:
        total.add(site.collect_reviewed(st, args.station, by=_by()))
    for src in args.sources:
        p = Path(src)
        files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
        for f in files:
            kind = kind_of(f.name)
            if kind == "video":
                rep = site.collect_video(st, args.station, f, args.every, by=_by())
            elif kind == "image":
                rep = site.collect_images(
                    st, args.station, [(f.name, f)], by=_by(), split=args.split
                )
            else:
                continue
            total.add(rep)
    out = {
        "station": args.station,
        "added": total.added,
        "near_copies": total.near_copies,
        "errors": total.errors,
    }
    emit(out) if args.json else say(
        f"{args.station}: {total.added} frames collected, "
        f"{total.near_copies} near-copies skipped, "
        f"{len(total.errors)} not collected"
    )
    if not args.json:  # with --json the sentences are in its 'errors'
        for e in total.errors:
            say(e)
    return EXIT_INPUT if total.errors else EXIT_OK


def cmd_label(args: argparse.Namespace) -> int:
    from core.training import site

    st = store()
    if args.action == "list":
        frames = site.frames(st, args.station)
        if args.json:
            emit(
                [
                    {
                        "id": f.id,
                        "file": f.path.name,
                        "split": f.record.split,
                        "status": f.record.status,
                        "boxes": f.record.boxes,
                        "uncertainty": f.record.uncertainty,
                    }
                    for f in frames
                ]
            )
        for f in frames if not args.json else ():
            say(
                f"{f.id:>6}  {f.record.status:<11} {f.record.split:<7} "
                f"{len(f.record.boxes)} boxes  {f.path.name}"
            )
        return EXIT_OK
    if args.action == "prelabel":
        say(f"{site.prelabel(st, args.station, by=_by())} frames pre-labelled")
        return EXIT_OK
    if not args.path:
        raise GloveWatchError(f"label {args.action} needs a folder: --out/--from PATH")
    if args.action == "export":
        data = site.export_yolo(
            st, args.station, Path(args.path), only_done=not args.include_unchecked
        )
        say(f"exported to {data}")
        return EXIT_OK
    rep = site.import_yolo(st, args.station, Path(args.path), by=_by(), done=not args.as_prelabels)
    say(
        f"{rep.added} frames labelled from {args.path}, {rep.near_copies} near-copies "
        f"skipped, {len(rep.errors)} unreadable"
    )
    return EXIT_INPUT if rep.errors else EXIT_OK


def cmd_finetune(args: argparse.Namespace) -> int:
    from core.training import runs, site

    st = store()
    plan = site.plan_finetune(
        st,
        args.station,
        _base(args),
        args.epochs,
        args.imgsz,
        args.freeze,
        args.ratio,
        batch=args.batch,
        device=args.device or "",
    )
    say(f"plan: {plan.describe()}")
    if args.dry_run:
        return EXIT_OK
    run = site.finetune(st, plan, by=_by())
    say(f"run {run.id} '{run.name}' {run.status}")
    if args.wait:
        run = runs.wait(st, run.id)
        say(f"run {run.id} {run.status}: {run.message or ''}")
    if args.json:
        emit({"run": run.id, "status": run.status, "estimate_s": plan.estimate_s})
    return EXIT_OK if run.status != "failed" else EXIT_INPUT


def cmd_complete(args: argparse.Namespace) -> int:
    from core.training import site

    rep = site.complete_missing(
        args.source,
        args.missing,
        Path(args.out),
        Path(args.weights) if args.weights else None,
        args.conf,
    )
    out = {"images": rep.images, "kept": rep.kept, "added": rep.added, "out": args.out}
    emit(out) if args.json else say(
        f"{rep.images} images: {rep.kept} labelled boxes kept, "
        f"{rep.added} '{args.missing}' boxes added -> {args.out}"
    )
    return EXIT_OK


def register(sub: Subparsers) -> None:
    """The site-loop commands: complete-labels, collect, label, finetune."""
    _register_complete(sub)
    _register_collect(sub)
    _register_label(sub)
    _register_finetune(sub)


def _register_complete(sub: Subparsers) -> None:
    cm = sub.add_parser(
        "complete-labels", help="add a class a data set does not label, from the model's boxes"
    )
    cm.add_argument("source", metavar="DATA")
    cm.add_argument("--missing", required=True, help="the unlabelled class, e.g. hand")
    cm.add_argument("--out", required=True, metavar="DIR")
    cm.add_argument("--weights", help="default: the shipped model")
    cm.add_argument("--conf", type=float, default=0.5)
    add_json(cm)
    cm.set_defaults(func=cmd_complete)


def _register_collect(sub: Subparsers) -> None:
    c = sub.add_parser("collect", help="collect a station's frames for labelling")
    c.add_argument("sources", nargs="*", metavar="IMAGE_VIDEO_OR_FOLDER")
    c.add_argument("--station", required=True)
    c.add_argument("--every", type=float, default=2.0, help="videos: one frame every N s")
    c.add_argument(
        "--split",
        choices=("train", "holdout"),
        help="photos that come with their own split (e.g. a set's test images); "
        "default: by capture time, or look-alike clusters without one",
    )
    c.add_argument(
        "--reviewed",
        action="store_true",
        help="also the evidence of the station's reviewed episodes",
    )
    add_json(c)
    c.set_defaults(func=cmd_collect)


def _register_label(sub: Subparsers) -> None:
    lb = sub.add_parser(
        "label", help="a station's site frames: list, prelabel, export, import (YOLO format)"
    )
    lb.add_argument("action", choices=("list", "prelabel", "export", "import"))
    lb.add_argument("--station", required=True)
    lb.add_argument("--out", "--from", dest="path", metavar="PATH")
    lb.add_argument(
        "--include-unchecked",
        action="store_true",
        help="export: also pre-labelled frames nobody checked",
    )
    lb.add_argument(
        "--as-prelabels",
        action="store_true",
        help="import: keep imported labels as pre-labels to check",
    )
    add_json(lb)
    lb.set_defaults(func=cmd_label)


def _register_finetune(sub: Subparsers) -> None:
    ft = sub.add_parser("finetune", help="fine-tune a station's model on its labelled frames")
    ft.add_argument("--station", required=True)
    ft.add_argument("--base", help="the base data set (default GLOVEWATCH_BASE_DATA)")
    ft.add_argument("--epochs", type=int, default=10)
    ft.add_argument("--imgsz", type=int, default=640)
    ft.add_argument("--freeze", type=int, default=10)
    ft.add_argument("--batch", type=int, default=16)
    ft.add_argument(
        "--ratio", type=float, default=2.0, help="base images replayed per station image"
    )
    ft.add_argument("--device", help="cpu, 0 ... (default: GPU when present)")
    ft.add_argument("--dry-run", action="store_true", help="only print the plan and estimate")
    ft.add_argument("--wait", action="store_true")
    add_json(ft)
    ft.set_defaults(func=cmd_finetune)
