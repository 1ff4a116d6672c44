"""Commands for data sets, training runs and the model registry: import-dataset, datasets,
merge-datasets, train, runs, stop, resume, compare, promote, rollback, registry."""

from __future__ import annotations

import argparse
from dataclasses import asdict

from core.cli.common import Subparsers, add_json, emit, say, store
from core.config import settings
from core.errors import EXIT_INPUT, EXIT_OK, TrainingError


def _run_line(run) -> str:  # type: ignore[no-untyped-def]
    from core.training.runs import best_metric

    best = best_metric(run.best, "mAP50-95")
    score = f" mAP50-95 {best:.3f}" if best is not None else ""
    return f"{run.id:>4}  {run.status:<8}  {run.name}  [{run.device}]{score}" + (
        f"  -- {run.message}" if run.message and run.status != "finished" else ""
    )


def cmd_import_dataset(args: argparse.Namespace) -> int:
    from core.training.datasets import import_dataset

    ds = import_dataset(store(), args.source, name=args.name, by=settings().user or None)
    if args.json:
        emit(
            {
                "id": ds.id,
                "name": ds.name,
                "data": str(ds.yaml_path),
                "task": ds.task,
                "names": ds.names,
                "images": ds.report.images,
                "warnings": ds.report.warnings,
            }
        )
    else:
        say(
            f"data set {ds.id} '{ds.name}' ({ds.task}, {len(ds.names)} classes): "
            f"{ds.report.images} images"
        )
        for w in ds.report.warnings:
            say(f"  warning: {w}")
    return EXIT_OK


def cmd_datasets(args: argparse.Namespace) -> int:
    from core.training.datasets import list_datasets

    items = list_datasets(store())
    if args.json:
        emit(
            [
                {
                    "id": d.id,
                    "name": d.name,
                    "task": d.task,
                    "names": d.names,
                    "images": d.report.images,
                    "data": str(d.yaml_path),
                    "created_at": d.created_at,
                }
                for d in items
            ]
        )
    for d in items if not args.json else ():
        say(
            f"{d.id:>4}  {d.name}  {d.task}  classes {', '.join(d.names)}  images "
            + ", ".join(f"{k} {v}" for k, v in d.report.images.items())
        )
    return EXIT_OK


def cmd_train(args: argparse.Namespace) -> int:
    from core.training import options, runs
    from core.training.datasets import resolve_data

    st = store()
    ds = resolve_data(st, args.data)
    spec = options.TrainSpec(
        data=str(ds.yaml_path),
        model=args.model,
        epochs=args.epochs,
        imgsz=args.imgsz,
        batch=args.batch,
        patience=args.patience,
        device=args.device or "",
        name=args.name or "",
        recipe=args.recipe,
        dataset=ds.name,
        extra=options.parse_extra(args.extra or ""),
    )
    run = runs.submit(st, spec, by=settings().user or None)
    say(f"run {run.id} '{run.name}' {run.status} on {run.device}")
    if args.wait:
        run = runs.wait(st, run.id)
        say(_run_line(run))
    if args.json:
        emit(
            {
                "id": run.id,
                "status": run.status,
                "run_dir": str(run.run_dir),
                "best": run.best,
                "message": run.message,
            }
        )
    return EXIT_OK if run.status != "failed" else EXIT_INPUT


def cmd_runs(args: argparse.Namespace) -> int:
    from core.training.runs import list_runs

    items = list_runs(store())
    if args.json:
        emit(
            [
                {
                    "id": r.id,
                    "name": r.name,
                    "status": r.status,
                    "device": r.device,
                    "dataset": r.dataset,
                    "model": r.model,
                    "created_at": r.created_at,
                    "message": r.message,
                    "best": r.best,
                    "run_dir": str(r.run_dir),
                }
                for r in items
            ]
        )
    for r in items if not args.json else ():
        say(_run_line(r))
    return EXIT_OK


def cmd_stop(args: argparse.Namespace) -> int:
    from core.training.runs import stop

    say(_run_line(stop(store(), args.run, by=settings().user or None)))
    return EXIT_OK


def cmd_resume(args: argparse.Namespace) -> int:
    from core.training.runs import resume

    say(_run_line(resume(store(), args.run, by=settings().user or None)))
    return EXIT_OK


def _comparison_dict(cmp) -> dict:  # type: ignore[no-untyped-def]
    return {
        "candidate": cmp.candidate.as_dict(),
        "active": cmp.active.as_dict() if cmp.active else None,
        "active_model": cmp.active_path.name,
        "note": cmp.note,
        "candidate_is_worse": cmp.candidate_is_worse,
    }


def _station_comparison(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from core.cli.site import _base
    from core.training import site

    return site.compare_station(store(), args.station, args.run, _base(args), args.imgsz)


def cmd_compare(args: argparse.Namespace) -> int:
    from core.training.registry import compare

    if args.station:
        scmp = _station_comparison(args)
        out = {
            "station": args.station,
            "base_drop": scmp.base_drop,
            "needs_confirmation": scmp.needs_confirmation,
            "holdout": [r.as_dict() for r in scmp.holdout] if scmp.holdout else None,
            "base": [r.as_dict() for r in scmp.base],
        }
        if args.json:
            emit(out)
        else:
            for label, pair in (("held-out frames", scmp.holdout), ("base test", scmp.base)):
                if pair:
                    say(
                        f"{label}: fine-tune mAP50 {pair[0].map50:.3f}, station model "
                        f"{pair[1].map50:.3f} ({pair[0].images} images)"
                    )
        return EXIT_OK
    cmp = compare(store(), args.run, split=args.split, imgsz=args.imgsz)
    if args.json:
        emit(_comparison_dict(cmp))
        return EXIT_OK
    for label, res in (("run", cmp.candidate), (f"active {cmp.active_path.name}", cmp.active)):
        if res is not None:
            say(
                f"{label}: {res.describe()}: mAP50 {res.map50:.3f}, mAP50-95 "
                f"{res.map50_95:.3f}; "
                + ", ".join(f"AP50 {k} {v:.3f}" for k, v in res.per_class_ap50.items())
            )
    if cmp.note:
        say(cmp.note)
    return EXIT_OK


def _roles(pairs: list[str] | None) -> dict[str, str] | None:
    from core.vision.roles import Role

    if not pairs:
        return None
    out = {}
    for pair in pairs:
        name, sep, role = pair.partition("=")
        if not sep or role not in {r.value for r in Role}:
            raise TrainingError(f"--role takes CLASS=protected|violation|context, not '{pair}'.")
        out[name] = role
    return out


def cmd_promote(args: argparse.Namespace) -> int:
    from core.training.registry import compare, promote

    st = store()
    if args.station:
        from core.training import site

        entry = site.promote_station(
            st,
            args.station,
            args.run,
            _station_comparison(args),
            args.by or settings().user or "cli",
            accept_drop=args.accept_lower,
        )
        say(f"{entry.path.name} now judges {args.station}; scores from {entry.score_source()}")
        return EXIT_OK
    cmp = compare(st, args.run, split=args.split, imgsz=args.imgsz) if args.split else None
    entry = promote(
        st,
        args.run,
        promoted_by=args.by,
        comparison=cmp,
        roles=_roles(args.role),
        accept_lower=args.accept_lower,
    )
    say(
        f"run {entry.run_id} is the active model: {entry.path.name} (sha256 "
        f"{entry.sha256[:12]}); scores from {entry.score_source()}; roles "
        + ", ".join(f"{k}={v}" for k, v in entry.roles.items())
    )
    return EXIT_OK


def cmd_rollback(args: argparse.Namespace) -> int:
    from core.training.registry import active_model, rollback

    rollback(store(), args.to, by=settings().user or None)
    say(f"active model: {active_model().label}")
    return EXIT_OK


def cmd_registry(args: argparse.Namespace) -> int:
    from core.training.registry import active_model, history

    entries = history(store())
    if args.json:
        emit(
            {
                "active": active_model().label,
                "entries": [
                    {
                        "id": e.id,
                        "active": e.active,
                        "path": e.path.name,
                        "run": e.run_id,
                        "dataset": e.dataset,
                        "scores": e.scores,
                        "roles": e.roles,
                        "by": e.promoted_by,
                        "at": e.promoted_at,
                        "sha256": e.sha256,
                    }
                    for e in entries
                ],
            }
        )
        return EXIT_OK
    say(f"active: {active_model().label}")
    for e in entries:
        m = e.scores.get("mAP50")
        say(
            f"{'*' if e.active else ' '}{e.id:>4}  {e.path.name}  run {e.run_id}  "
            f"{e.promoted_at} by {e.promoted_by}"
            + (f"  mAP50 {m:.3f} on {e.score_source()}" if m is not None else "")
        )
    return EXIT_OK


def cmd_merge_datasets(args: argparse.Namespace) -> int:
    from pathlib import Path

    from core.training.merge import merge_datasets

    teacher = Path(args.teacher) if args.teacher else None
    rep = merge_datasets(
        [Path(d) for d in args.sources], Path(args.out), args.strategy, teacher, args.conf
    )
    if args.json:
        emit({**asdict(rep), "data": str(rep.data_yaml)})
        return EXIT_OK
    for name, classes in rep.sources.items():
        skipped = len(rep.skipped.get(name, []))
        say(
            f"{name}: labels {', '.join(classes)}; {rep.pseudo.get(name, 0)} teacher box(es) "
            f"added" + (f"; {skipped} unreadable image(s) skipped" if skipped else "")
        )
    images = ", ".join(f"{split} {n}" for split, n in rep.images.items())
    say(f"merged ({rep.strategy}): {images} images -> {rep.data_yaml}")
    return EXIT_OK


def register(sub: Subparsers) -> None:
    """The training commands: data sets, runs, and the models they make."""
    _register_datasets(sub)
    _register_runs(sub)
    _register_models(sub)


def _register_datasets(sub: Subparsers) -> None:
    i = sub.add_parser("import-dataset", help="import a YOLO data set (zip or folder)")
    i.add_argument("source", metavar="ZIP_OR_DIR")
    i.add_argument("--name")
    add_json(i)
    i.set_defaults(func=cmd_import_dataset)

    ds = sub.add_parser("datasets", help="list registered data sets")
    add_json(ds)
    ds.set_defaults(func=cmd_datasets)

    mg = sub.add_parser(
        "merge-datasets",
        help="merge data sets into one to train on; a teacher labels what a one-class set lacks",
    )
    mg.add_argument("sources", nargs="+", metavar="DIR", help="YOLO data set folders")
    mg.add_argument("--out", required=True, metavar="DIR", help="a new folder")
    mg.add_argument("--strategy", choices=("pseudo", "naive"), default="pseudo")
    mg.add_argument("--teacher", metavar="WEIGHTS", help="model that labels the missing class")
    mg.add_argument("--conf", type=float, default=0.6, help="teacher confidence (default 0.6)")
    add_json(mg)
    mg.set_defaults(func=cmd_merge_datasets)


def _register_runs(sub: Subparsers) -> None:
    t = sub.add_parser("train", help="start a training run in its own process")
    t.add_argument(
        "--data",
        required=True,
        help="data.yaml, zip or folder (imported first), or a registered data set",
    )
    t.add_argument(
        "--model",
        required=True,
        help="yolo11n.yaml ... yolo11x-seg.yaml, a models/*.yaml or a .pt file",
    )
    t.add_argument("--epochs", type=int, default=50)
    t.add_argument("--imgsz", type=int, default=640)
    t.add_argument("--batch", type=int, default=16)
    t.add_argument("--patience", type=int, default=50)
    t.add_argument("--device", help="cpu, 0, ... (default: GPU 0 if present, else cpu)")
    t.add_argument("--name")
    t.add_argument("--recipe", help="a training recipe (default, wide, ...)")
    t.add_argument("--extra", help="allowed Ultralytics options as YAML, e.g. '{lr0: 0.005}'")
    t.add_argument("--wait", action="store_true", help="wait until the run ends")
    add_json(t)
    t.set_defaults(func=cmd_train)

    r = sub.add_parser("runs", help="list training runs")
    add_json(r)
    r.set_defaults(func=cmd_runs)

    for name, func, text in (
        ("stop", cmd_stop, "stop a training run"),
        ("resume", cmd_resume, "resume a stopped or failed run"),
    ):
        c = sub.add_parser(name, help=text)
        c.add_argument("run", metavar="RUN", help="run id or name")
        c.set_defaults(func=func, json=False)


def _register_models(sub: Subparsers) -> None:
    cp = sub.add_parser("compare", help="score a run and the active model on the same split")
    cp.add_argument("run", metavar="RUN")
    cp.add_argument("--split", default="val")
    cp.add_argument("--imgsz", type=int, help="default: each model's own training size")
    cp.add_argument(
        "--station",
        help="a station fine-tune: score on the station's held-out frames and the base test split",
    )
    cp.add_argument("--base", help="with --station: the base data set")
    add_json(cp)
    cp.set_defaults(func=cmd_compare)

    pr = sub.add_parser("promote", help="make a run's best.pt the active model")
    pr.add_argument("run", metavar="RUN")
    pr.add_argument("--by", help="who promotes (default: $GLOVEWATCH_USER or login)")
    pr.add_argument("--split", help="score both models on this split first (val, test)")
    pr.add_argument("--imgsz", type=int)
    pr.add_argument(
        "--role",
        action="append",
        metavar="CLASS=ROLE",
        help="class role: protected, violation or context (repeatable)",
    )
    pr.add_argument(
        "--accept-lower",
        action="store_true",
        help="promote even if it scores lower than the active model (with "
        "--station: even if it loses more than 0.02 mAP50 on the base test)",
    )
    pr.add_argument("--station", help="promote for this station only")
    pr.add_argument("--base", help="with --station: the base data set")
    pr.set_defaults(func=cmd_promote, json=False)

    b = sub.add_parser("rollback", help="re-activate the previously promoted model")
    b.add_argument("--to", type=int, help="registry entry id (default: the one before)")
    b.set_defaults(func=cmd_rollback, json=False)

    rg = sub.add_parser("registry", help="list promotions and the active model")
    add_json(rg)
    rg.set_defaults(func=cmd_registry)
