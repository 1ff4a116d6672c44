"""The command line: every feature the pages offer, scriptable.

Each subcommand is a ``_cmd_<name>(args) -> int`` function plus a parser block in
:func:`build_parser`. With ``--json`` a command prints nothing but JSON on stdout: library
output is sent to stderr while it runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from core.config import PROJECT_ROOT, settings
from core.logs import setup_logging

log = logging.getLogger("glovewatch.cli")


def _emit(obj) -> None:
    print(json.dumps(obj, default=str), file=sys.__stdout__, flush=True)


def _expand_sources(sources: list[str]) -> tuple[list[Path], list[str]]:
    """Files from files and folders (recursively); unknown paths come back as errors."""
    from core.media import kind_of

    files, missing = [], []
    for s in sources:
        p = Path(s)
        if p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.is_file() and kind_of(f.name))
        elif p.is_file():
            files.append(p)
        else:
            missing.append(s)
    return files, missing


def _tiles_arg(text: str):
    from core.tiling import TileSpec, TilingError

    if text.lower() == "none":
        return None
    try:
        return TileSpec.parse(text)
    except TilingError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _cmd_detect(args) -> int:
    import shutil

    from core.batch import BatchInput, run_batch
    from core.detector import InferenceParams, ModelError

    files, missing = _expand_sources(args.sources)
    for m in missing:
        log.error("%s: no such file or folder", m)
        if args.json:
            _emit({"source": m, "error": "no such file or folder"})
    if not files:
        log.error("nothing to process")
        return 1
    params = InferenceParams(conf=args.conf, iou=args.iou, imgsz=args.imgsz)
    try:
        report = run_batch([BatchInput.from_path(f) for f in files], args.weights, params,
                           station=args.station, tiles=args.tiles)
    except (ModelError, PermissionError) as exc:
        log.error("%s", exc)
        return 2
    save = Path(args.save) if args.save else None
    for f in report.files:
        annotated = f.annotated_path
        if save and annotated:
            save.mkdir(parents=True, exist_ok=True)
            annotated = Path(shutil.copy2(annotated, save / annotated.name))
        if args.json:
            _emit({
                "source": f.name, "kind": f.kind, "error": f.error,
                "verdict": str(f.verdict.verdict) if f.verdict else None,
                "gloved": f.verdict.protected if f.verdict else 0,
                "bare": f.verdict.violation if f.verdict else 0,
                "frames": f.frames, "events": f.events,
                "annotated": str(annotated) if annotated else None,
                "detections": [{"frame": r.frame, "class": r.class_name, "role": r.role,
                                "confidence": round(r.confidence, 4),
                                "box": [round(v, 1) for v in (r.x1, r.y1, r.x2, r.y2)]}
                               for r in f.rows],
            })
        elif f.ok:
            print(f"{f.name}: {f.verdict.verdict} (gloved {f.verdict.protected}, "
                  f"bare {f.verdict.violation})", file=sys.__stdout__)
        else:
            print(f"{f.name}: ERROR {f.error}", file=sys.__stdout__)
    if not args.json:
        print(f"session {report.session_id}: {len(report.files)} files, "
              f"{report.failed} failed; saved in {report.out_dir}", file=sys.__stdout__)
    return 1 if (report.failed or missing) else 0


def _cmd_evaluate(args) -> int:
    from core.detector import ModelError
    from core.evaluate import evaluate

    try:
        res = evaluate(args.weights, args.data, split=args.split, imgsz=args.imgsz,
                       batch=args.batch)
    except (ModelError, FileNotFoundError, ValueError) as exc:
        log.error("%s", exc)
        return 2
    d = res.as_dict()
    if args.json:
        _emit(d)
    else:
        print(f"{res.split}: {res.images} images, mAP50 {res.map50:.3f}, "
              f"mAP50-95 {res.map50_95:.3f}", file=sys.__stdout__)
        for name, ap in res.per_class_ap50.items():
            print(f"  AP50 {name}: {ap:.3f}", file=sys.__stdout__)
    return 0


def _run_line(run) -> str:
    best = run.best.get("metrics/mAP50-95(M)", run.best.get("metrics/mAP50-95(B)"))
    score = f" mAP50-95 {best:.3f}" if best is not None else ""
    return (f"{run.id:>4}  {run.status:<8}  {run.name}  [{run.device}]{score}"
            + (f"  -- {run.message}" if run.message and run.status != "finished" else ""))


def _cmd_import_dataset(args) -> int:
    from core import store
    from core.datasets import DatasetError, import_dataset

    try:
        ds = import_dataset(store.connect(), args.source, name=args.name)
    except DatasetError as exc:
        log.error("%s", exc)
        return 2
    if args.json:
        _emit({"id": ds.id, "name": ds.name, "data": str(ds.yaml_path), "task": ds.task,
               "names": ds.names, "images": ds.report.images,
               "warnings": ds.report.warnings})
    else:
        print(f"data set {ds.id} '{ds.name}' ({ds.task}, {len(ds.names)} classes): "
              f"{ds.report.images} images -> {ds.yaml_path}", file=sys.__stdout__)
        for w in ds.report.warnings:
            print(f"  warning: {w}", file=sys.__stdout__)
    return 0


def _cmd_train(args) -> int:
    from core import store, training
    from core.datasets import DatasetError, resolve_data

    conn = store.connect()
    try:
        ds = resolve_data(conn, args.data)
        spec = training.TrainSpec(
            data=str(ds.yaml_path), model=args.model, epochs=args.epochs, imgsz=args.imgsz,
            batch=args.batch, patience=args.patience, device=args.device or "",
            name=args.name or "", recipe=args.recipe, dataset=ds.name,
            extra=training.parse_extra(args.extra or ""))
        run = training.submit(conn, spec)
    except (DatasetError, training.TrainingError) as exc:
        log.error("%s", exc)
        return 2
    print(f"run {run.id} '{run.name}' {run.status} on {run.device}; log: {run.log_path}",
          file=sys.__stdout__, flush=True)
    if args.wait:
        run = training.wait(conn, run.id)
        print(_run_line(run), file=sys.__stdout__)
    if args.json:
        _emit({"id": run.id, "status": run.status, "run_dir": str(run.run_dir),
               "best": run.best, "message": run.message})
    return 0 if run.status != "failed" else 1


def _cmd_runs(args) -> int:
    from core import store, training

    runs = training.list_runs(store.connect())
    if args.json:
        for r in runs:
            _emit({"id": r.id, "name": r.name, "status": r.status, "device": r.device,
                   "dataset": r.dataset, "model": r.model, "created_at": r.created_at,
                   "message": r.message, "best": r.best, "run_dir": str(r.run_dir)})
    for r in runs if not args.json else ():
        print(_run_line(r), file=sys.__stdout__)
    return 0


def _cmd_stop(args) -> int:
    from core import store, training

    try:
        run = training.stop(store.connect(), args.run)
    except training.TrainingError as exc:
        log.error("%s", exc)
        return 2
    print(_run_line(run), file=sys.__stdout__)
    return 0


def _cmd_resume(args) -> int:
    from core import store, training

    try:
        run = training.resume(store.connect(), args.run)
    except training.TrainingError as exc:
        log.error("%s", exc)
        return 2
    print(_run_line(run), file=sys.__stdout__)
    return 0


def _cmd_promote(args) -> int:
    from core import store, training
    from core.registry import RegistryError, promote

    try:
        entry = promote(store.connect(), args.run, promoted_by=args.by)
    except (RegistryError, training.TrainingError) as exc:
        log.error("%s", exc)
        return 2
    print(f"run {entry.run_id} is the active model: {entry.path} (sha256 {entry.sha256[:12]})",
          file=sys.__stdout__)
    return 0


def _cmd_rollback(args) -> int:
    from core import store
    from core.registry import RegistryError, rollback

    try:
        entry = rollback(store.connect(), args.to)
    except RegistryError as exc:
        log.error("%s", exc)
        return 2
    print(f"active model: {entry.path if entry else settings().default_weights}",
          file=sys.__stdout__)
    return 0


def _history_filter(args):
    from datetime import date

    from core.history import HistoryFilter

    return HistoryFilter(start=date.fromisoformat(args.date_from),
                         end=date.fromisoformat(args.date_to),
                         stations=tuple(args.station or ()), shifts=tuple(args.shift or ()))


def _cmd_report(args) -> int:
    from core import store
    from core.reports import episodes_csv, write_history_xlsx

    try:
        f = _history_filter(args)
    except ValueError as exc:
        log.error("bad date range: %s (use --from YYYY-MM-DD --to YYYY-MM-DD)", exc)
        return 2
    conn = store.connect()
    out = write_history_xlsx(Path(args.out), conn, f)
    if args.csv:
        Path(args.csv).write_text(episodes_csv(conn, f))
    if args.json:
        _emit({"xlsx": str(out), "csv": args.csv, "filter": f.describe()})
    else:
        print(f"report for {f.describe()} -> {out}", file=sys.__stdout__)
    return 0


def _cmd_retention(args) -> int:
    from core import store
    from core.retention import run_retention

    try:
        rep = run_retention(store.connect(), args.days)
    except ValueError as exc:
        log.error("%s", exc)
        return 2
    if args.json:
        from dataclasses import asdict

        _emit(asdict(rep))
    else:
        print(rep.summary(), file=sys.__stdout__)
    return 0


def _cmd_review(args) -> int:
    from core import store
    from core.review import set_review

    try:
        entry = set_review(store.connect(), args.episode, args.state, args.comment or "",
                           args.by or "")
    except ValueError as exc:
        log.error("%s", exc)
        return 2
    print(f"episode {entry.event_id}: {entry.review} by {entry.reviewed_by or '-'} at "
          f"{entry.reviewed_at}", file=sys.__stdout__)
    return 0


def _cmd_export_reviewed(args) -> int:
    from core import store
    from core.review import export_reviewed

    rep = export_reviewed(store.connect(), Path(args.out), dismissed_as=args.dismissed_as)
    if args.json:
        _emit({"path": str(rep.path), "images": rep.images, "boxes": rep.boxes,
               "skipped": rep.skipped})
    else:
        print(f"{rep.images} images, {rep.boxes} boxes -> {rep.path}; "
              f"{len(rep.skipped)} episodes skipped", file=sys.__stdout__)
        for eid, why in rep.skipped[:20]:
            print(f"  skipped episode {eid}: {why}", file=sys.__stdout__)
    return 0


def _cmd_synth(args) -> int:
    from dataclasses import asdict

    from core import store
    from core.synth import generate

    conn = store.connect(args.out)
    try:
        rep = generate(conn, stations=args.stations, days=args.days, seconds_rows=args.rows,
                       seed=args.seed)
    except ValueError as exc:
        log.error("%s", exc)
        return 2
    if args.json:
        _emit(asdict(rep))
    else:
        print(f"{args.out}: {rep.stations} stations, {rep.start} to {rep.end}, "
              f"{rep.coverage_seconds} per-second rows, {rep.coverage_hourly} hourly rows, "
              f"{rep.events} episodes in {rep.seconds:.1f} s", file=sys.__stdout__)
    return 0


def _cmd_bench_history(args) -> int:
    import tempfile

    from core import history, store
    from core.synth import generate

    with tempfile.TemporaryDirectory(prefix="gw-bench-") as tmp:
        db = Path(args.db) if args.db else Path(tmp) / "bench.sqlite"
        conn = store.connect(db)
        gen = None
        if not args.db:
            gen = generate(conn, stations=args.stations, days=args.days, seconds_rows=args.rows)
        counts = {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                  for t in ("coverage_seconds", "coverage_hourly", "events", "results")}
        f = history.default_filter(conn, days=args.days)
        timings = history.bench(conn, f)
        conn.close()
    slowest = max(t.ms for t in timings)
    out = {"db": str(args.db or "temporary"), "rows": counts, "filter": f.describe(),
           "generate_s": round(gen.seconds, 1) if gen else None,
           "queries_ms": {t.name: t.ms for t in timings}, "slowest_ms": slowest,
           "target_ms": 1000, "ok": slowest < 1000}
    if args.json:
        _emit(out)
    else:
        for t in timings:
            print(f"{t.name:<16} {t.ms:8.1f} ms  ({t.rows} rows)", file=sys.__stdout__)
        print(json.dumps(out["rows"]), file=sys.__stdout__)
    return 0 if out["ok"] else 1


def _cmd_bench(args) -> int:
    from core.bench import run_bench
    from core.detector import ModelError
    from core.media import MediaError

    try:
        res = run_bench(Path(args.source), Path(args.weights), backend=args.backend,
                        imgsz=args.imgsz, passes=args.passes, plain=not args.no_plain)
    except (ModelError, MediaError, FileNotFoundError) as exc:
        log.error("%s", exc)
        return 2
    if args.json:
        _emit(res.as_dict())
    else:
        s = res.stages_ms
        print(f"{res.backend} imgsz {res.imgsz}: pipeline {res.pipeline_fps} fps over "
              f"{res.frames} frames (decode {s.decode} ms, infer+track {s.infer_track} ms, "
              f"episodes {s.episodes} ms, annotate {s.annotate} ms); plain YOLO.predict "
              f"loop {res.plain_fps} fps; ratio {res.ratio}x; RSS MiB {res.rss_mb}",
              file=sys.__stdout__)
    return 0


def _cmd_live(args) -> int:
    import time

    from core.detector import InferenceParams
    from core.episodes import EpisodeConfig
    from core.live import (FrameProcessor, LiveConfig, SourceRunner, SourceStatus, is_url,
                           redact_url)

    cfg = LiveConfig(weights=Path(args.weights), backend=args.backend,
                     params=InferenceParams(conf=args.conf, iou=args.iou, imgsz=args.imgsz),
                     station=args.station, kind="stream" if is_url(args.source) else "file",
                     source=redact_url(args.source),
                     episodes=EpisodeConfig(args.min_duration, args.grace),
                     blur_evidence=not args.no_blur, cooldown_s=args.cooldown,
                     webhook_url=args.webhook if args.webhook is not None
                     else settings().webhook_url)
    proc = FrameProcessor(cfg)
    runner = SourceRunner(args.source, proc, realtime=not args.fast).start()
    last = None
    try:
        while runner.alive:
            time.sleep(1.0)
            status, message = runner.status()
            if (status, message) != last and not args.json:
                print(f"[{status}] {message}", file=sys.__stdout__, flush=True)
            last = (status, message)
    except KeyboardInterrupt:
        runner.stop()
    proc.alerter.wait_sent()
    snap = proc.snapshot()
    status, message = runner.status()
    out = {"status": str(status), "message": message, "session_id": snap.session_id,
           "frames": snap.frames, "dropped": snap.dropped, "episodes": snap.episodes,
           "compliance": snap.compliance, "alerts": [a.payload() for a in snap.alerts]}
    if args.json:
        _emit(out)
    else:
        print(f"session {snap.session_id}: {snap.frames} frames ({snap.dropped} dropped), "
              f"{snap.episodes} episodes, alerts {len(snap.alerts)}", file=sys.__stdout__)
    return 1 if status is SourceStatus.FAILED else 0


def _cmd_stations(args) -> int:
    from core import store
    from core.stations import (Polarity, RuleError, StationRule, current_rule,
                               delete_station, list_stations, parse_zones, rule_history,
                               save_rule)

    conn = store.connect()
    if args.action == "list":
        rules = [current_rule(conn, n) for n in list_stations(conn)]
        if args.json:
            _emit([{"station": r.station, "version": r.version, "polarity": str(r.polarity),
                    "allowed": list(r.allowed), "zones": [z.to_text() for z in r.zones],
                    "tiles": r.tiles or None}
                   for r in rules])
        for r in rules if not args.json else ():
            print(f"{r.station}: v{r.version} {r.polarity}"
                  + (f" allowed={','.join(r.allowed)}" if r.allowed else "")
                  + "".join(f"\n  zone {z.to_text()}" for z in r.zones), file=sys.__stdout__)
        return 0
    if not args.name:
        log.error("give the station name: python -m core stations %s NAME", args.action)
        return 2
    if args.action == "show":
        hist = rule_history(conn, args.name)
        if args.json:
            _emit([{"version": h.rule.version, "created_at": h.created_at, "author": h.author,
                    "rule": json.loads(h.rule.to_json())} for h in hist])
        for h in hist if not args.json else ():
            print(f"v{h.rule.version} {h.created_at} by {h.author or '-'}: {h.rule.to_json()}",
                  file=sys.__stdout__)
        return 0
    if args.action == "delete":
        delete_station(conn, args.name)
        return 0
    try:
        zones = parse_zones("\n".join(args.zone or []))
        rule = save_rule(conn, StationRule(
            args.name, polarity=Polarity(args.polarity),
            allowed=tuple(a.strip() for a in (args.allowed or "").split(",") if a.strip()),
            zones=zones, tiles=args.tiles or ""), author=args.by)
    except RuleError as exc:
        log.error("%s", exc)
        return 2
    if args.json:
        _emit({"station": rule.station, "version": rule.version})
    else:
        print(f"{rule.station}: saved rule v{rule.version}", file=sys.__stdout__)
    return 0


def _cmd_wideview(args) -> int:
    from core.wideview import WideViewError, build_wideview

    try:
        wv = build_wideview(Path(args.dataset), Path(args.out), n=args.n, seed=args.seed)
    except (WideViewError, OSError) as exc:
        log.error("%s", exc)
        return 2
    c = wv.composites
    if args.json:
        _emit({"data": str(wv.data_yaml), "images": c.images, "boxes": c.boxes,
               "sources": len(c.sources)})
    else:
        print(f"{c.images} wide-view canvases ({c.boxes} boxes) from {len(c.sources)} test "
              f"images -> {wv.data_yaml}", file=sys.__stdout__)
    return 0


def _cmd_evaluate_tiled(args) -> int:
    from core.detector import ModelError
    from core.tiling import TilingError, TileSpec, evaluate_tiled

    try:
        tiles = TileSpec.parse(args.tiles) if args.tiles != "none" else None
        res = evaluate_tiled(args.weights, args.data, split=args.split, imgsz=args.imgsz,
                             tiles=tiles)
    except (ModelError, FileNotFoundError, ValueError, TilingError) as exc:
        log.error("%s", exc)
        return 2
    if args.json:
        _emit({"weights": res.weights, "data": res.data, "split": res.split,
               "imgsz": res.imgsz, "tiles": args.tiles, "images": res.images,
               "map50": res.map50, "map50_95": res.map50_95,
               "per_class_ap50": res.per_class_ap50, "ms_per_frame": res.ms_per_frame})
    else:
        print(f"{res.split} ({args.tiles} tiles): {res.images} images, mAP50 {res.map50:.3f}, "
              f"mAP50-95 {res.map50_95:.3f}, {res.ms_per_frame:.0f} ms/frame",
              file=sys.__stdout__)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from core.registry import active_weights

    s = settings()
    active = str(active_weights())  # the promoted model if any, else the shipped default
    p = argparse.ArgumentParser(prog="python -m core", description="GloveWatch command line")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("detect", help="detect gloved and bare hands in images, folders, videos")
    d.add_argument("sources", nargs="+", metavar="SOURCE")
    d.add_argument("--weights", default=active)
    d.add_argument("--conf", type=float, default=s.conf)
    d.add_argument("--iou", type=float, default=s.iou)
    d.add_argument("--imgsz", type=int, default=s.imgsz)
    d.add_argument("--station", default="default")
    d.add_argument("--save", metavar="DIR", help="also copy annotated outputs here")
    d.add_argument("--tiles", type=_tiles_arg, metavar="SIZE[:OVERLAP[:nms|wbf]]",
                   help="sliced inference for small hands in wide views, e.g. 320:0.25 "
                        "(default: the station's setting)")
    d.add_argument("--json", action="store_true", help="one JSON object per input on stdout")
    d.set_defaults(func=_cmd_detect)

    e = sub.add_parser("evaluate", help="mAP of a model on a data set split")
    e.add_argument("--data", required=True, help="YOLO data.yaml")
    e.add_argument("--split", default="test")
    e.add_argument("--weights", default=active)
    e.add_argument("--imgsz", type=int, default=s.imgsz)
    e.add_argument("--batch", type=int, default=16)
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=_cmd_evaluate)

    i = sub.add_parser("import-dataset", help="import a YOLO data set (zip or folder)")
    i.add_argument("source", metavar="ZIP_OR_DIR")
    i.add_argument("--name")
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=_cmd_import_dataset)

    t = sub.add_parser("train", help="start a training run in its own process")
    t.add_argument("--data", required=True,
                   help="data.yaml, zip or folder (imported first), or a registered data set")
    t.add_argument("--model", required=True,
                   help="yolo11n.yaml ... yolo11x-seg.yaml, a models/*.yaml or a .pt file")
    t.add_argument("--epochs", type=int, default=50)
    t.add_argument("--imgsz", type=int, default=640)
    t.add_argument("--batch", type=int, default=16)
    t.add_argument("--patience", type=int, default=50)
    t.add_argument("--device", help="cpu, 0, ... (default: GPU 0 if present, else cpu)")
    t.add_argument("--name")
    t.add_argument("--recipe", help="a training recipe from core/recipes.py")
    t.add_argument("--extra", help="more Ultralytics options as YAML, e.g. '{lr0: 0.005}'")
    t.add_argument("--wait", action="store_true", help="wait until the run ends")
    t.add_argument("--json", action="store_true")
    t.set_defaults(func=_cmd_train)

    r = sub.add_parser("runs", help="list training runs")
    r.add_argument("--json", action="store_true")
    r.set_defaults(func=_cmd_runs)

    for name, func, text in (("stop", _cmd_stop, "stop a training run"),
                             ("resume", _cmd_resume, "resume a stopped or failed run"),
                             ("promote", _cmd_promote, "make a run's best.pt the active model")):
        c = sub.add_parser(name, help=text)
        c.add_argument("run", metavar="RUN", help="run id or name")
        if name == "promote":
            c.add_argument("--by", help="who promotes (default: $GLOVEWATCH_USER or login)")
        c.set_defaults(func=func, json=False)

    b = sub.add_parser("rollback", help="re-activate the previously promoted model")
    b.add_argument("--to", type=int, help="registry entry id (default: the one before)")
    b.set_defaults(func=_cmd_rollback, json=False)

    rp = sub.add_parser("report", help="Excel compliance report (and CSV of episodes)")
    rp.add_argument("--from", dest="date_from", required=True, metavar="YYYY-MM-DD")
    rp.add_argument("--to", dest="date_to", required=True, metavar="YYYY-MM-DD")
    rp.add_argument("--station", action="append", help="repeat for several stations")
    rp.add_argument("--shift", action="append", help="repeat for several shifts")
    rp.add_argument("--out", required=True, metavar="FILE.xlsx")
    rp.add_argument("--csv", metavar="FILE.csv", help="also write the episode table as CSV")
    rp.add_argument("--json", action="store_true")
    rp.set_defaults(func=_cmd_report)

    rt = sub.add_parser("retention", help="delete evidence and raw rows older than N days")
    rt.add_argument("--days", type=int, default=s.retention_days)
    rt.add_argument("--json", action="store_true")
    rt.set_defaults(func=_cmd_retention)

    rv = sub.add_parser("review", help="mark an episode confirmed, dismissed or unreviewed")
    rv.add_argument("episode", type=int, metavar="EPISODE_ID")
    rv.add_argument("state", choices=("confirmed", "dismissed", "unreviewed"))
    rv.add_argument("--comment")
    rv.add_argument("--by", help="reviewer name")
    rv.set_defaults(func=_cmd_review, json=False)

    ex = sub.add_parser("export-reviewed", help="reviewed evidence as a YOLO data set")
    ex.add_argument("--out", required=True, metavar="DIR")
    ex.add_argument("--dismissed-as", choices=("glove", "background"), default="glove")
    ex.add_argument("--json", action="store_true")
    ex.set_defaults(func=_cmd_export_reviewed)

    sy = sub.add_parser("synth", help="fill a store with a synthetic year of monitoring")
    sy.add_argument("--out", required=True, metavar="DB", help="SQLite file (created)")
    sy.add_argument("--stations", type=int, default=20)
    sy.add_argument("--days", type=int, default=365)
    sy.add_argument("--rows", type=int, default=3_000_000, help="raw per-second rows")
    sy.add_argument("--seed", type=int, default=0)
    sy.add_argument("--json", action="store_true")
    sy.set_defaults(func=_cmd_synth)

    bh = sub.add_parser("bench-history", help="time every History query on a big store")
    bh.add_argument("--rows", type=int, default=3_000_000,
                    help="per-second rows of the generated store")
    bh.add_argument("--stations", type=int, default=20)
    bh.add_argument("--days", type=int, default=365)
    bh.add_argument("--db", help="an existing store instead of a generated one")
    bh.add_argument("--json", action="store_true")
    bh.set_defaults(func=_cmd_bench_history)

    bn = sub.add_parser("bench", help="live pipeline fps vs a plain YOLO.predict loop")
    bn.add_argument("--source", required=True, metavar="VIDEO")
    bn.add_argument("--backend", choices=("pytorch", "onnx", "openvino"), default="pytorch")
    bn.add_argument("--weights", default=active)
    bn.add_argument("--imgsz", type=int, default=s.imgsz)
    bn.add_argument("--passes", type=int, default=1, help="loop the clip (memory over time)")
    bn.add_argument("--no-plain", action="store_true", help="skip the plain predict loop")
    bn.add_argument("--json", action="store_true")
    bn.set_defaults(func=_cmd_bench)

    lv = sub.add_parser("live", help="watch a camera URL or replay a video file, log episodes")
    lv.add_argument("source", metavar="URL_OR_FILE")
    lv.add_argument("--station", default="default")
    lv.add_argument("--weights", default=active)
    lv.add_argument("--backend", choices=("pytorch", "onnx", "openvino"), default="pytorch")
    lv.add_argument("--conf", type=float, default=s.conf)
    lv.add_argument("--iou", type=float, default=s.iou)
    lv.add_argument("--imgsz", type=int, default=s.imgsz)
    lv.add_argument("--min-duration", type=float, default=1.0, help="seconds (episode)")
    lv.add_argument("--grace", type=float, default=2.0, help="seconds of gap merged")
    lv.add_argument("--cooldown", type=float, default=30.0, help="seconds between alerts")
    lv.add_argument("--webhook", help="POST alerts here (default GLOVEWATCH_WEBHOOK_URL)")
    lv.add_argument("--no-blur", action="store_true", help="store evidence unredacted")
    lv.add_argument("--fast", action="store_true", help="file: every frame, not real time")
    lv.add_argument("--json", action="store_true")
    lv.set_defaults(func=_cmd_live)

    sn = sub.add_parser("stations", help="list, show, set or delete station rules and zones")
    sn.add_argument("action", choices=("list", "show", "set", "delete"))
    sn.add_argument("name", nargs="?")
    sn.add_argument("--polarity", choices=("gloves_required", "no_gloves"),
                    default="gloves_required")
    sn.add_argument("--allowed", help="comma-separated glove classes allowed (default any)")
    sn.add_argument("--zone", action="append", metavar="'NAME: x,y x,y x,y'",
                    help="danger zone in 0..1 image coordinates (repeatable)")
    sn.add_argument("--tiles", metavar="SIZE[:OVERLAP[:nms|wbf]]",
                    help="tiled inference for wide views at this station, e.g. 320:0.25")
    sn.add_argument("--by", help="author of this rule version")
    sn.add_argument("--json", action="store_true")
    sn.set_defaults(func=_cmd_stations)

    wv = sub.add_parser("wideview", help="generate the wide-view test set (test split only)")
    wv.add_argument("--out", required=True, metavar="DIR")
    wv.add_argument("--dataset",
                    default=str(PROJECT_ROOT.parent / "shared" / "datasets" / "gloves"),
                    help="YOLO data set folder whose test split is used")
    wv.add_argument("--n", type=int, help="canvases (default: every test image once)")
    wv.add_argument("--seed", type=int, default=0)
    wv.add_argument("--json", action="store_true")
    wv.set_defaults(func=_cmd_wideview)

    et = sub.add_parser("evaluate-tiled", help="mAP with tiled (sliced) inference")
    et.add_argument("--data", required=True, help="YOLO data.yaml")
    et.add_argument("--split", default="test")
    et.add_argument("--weights", default=active)
    et.add_argument("--imgsz", type=int, default=s.imgsz)
    et.add_argument("--tiles", default="640:0.25",
                    help="SIZE[:OVERLAP[:nms|wbf]], or 'none' for full-frame inference")
    et.add_argument("--json", action="store_true")
    et.set_defaults(func=_cmd_evaluate_tiled)

    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    setup_logging(logging.WARNING)
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    # Library chatter must never mix with JSON on stdout.
    with contextlib.redirect_stdout(sys.stderr):
        try:
            return func(args)
        except KeyboardInterrupt:
            return 130
