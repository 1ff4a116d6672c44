"""Commands for models on images: detect, evaluate, evaluate-tiled, wideview, bench."""

from __future__ import annotations

import argparse
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.cli.common import (
    Subparsers,
    add_inference,
    add_json,
    add_weights,
    emit,
    say,
    store,
    tiles_arg,
    weights,
)
from core.config import DEFAULTS, PROJECT_ROOT, TRIAL_STATION, settings
from core.errors import EXIT_INPUT, EXIT_OK, EXIT_UNUSABLE
from core.vision.detector import BACKENDS

if TYPE_CHECKING:  # the batch pipeline loads only when detect runs
    from core.pipeline.batch import FileResult


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


def cmd_detect(args: argparse.Namespace) -> int:
    from core.pipeline.batch import BatchInput, run_batch
    from core.vision.detector import InferenceParams

    files, missing = _expand_sources(args.sources)
    for m in missing:
        say(f"{m}: no such file or folder") if not args.json else emit(
            {"source": m, "error": "no such file or folder"}
        )
    if not files:
        say("nothing to process")
        return EXIT_INPUT
    params = InferenceParams(conf=args.conf, iou=args.iou, imgsz=args.imgsz)
    report = run_batch(
        [BatchInput.from_path(f) for f in files],
        weights(args),
        params,
        station=args.station,
        backend=args.backend,
        tiles=args.tiles,
        store=store(),
        user=settings().user or None,
    )
    save = Path(args.save) if args.save else None
    for f in report.files:
        annotated = f.annotated_path
        if save and annotated:
            save.mkdir(parents=True, exist_ok=True)
            annotated = Path(shutil.copy2(annotated, save / annotated.name))
        if args.json:
            emit(_file_record(f, annotated))
        elif f.ok:
            say(f.describe())
        else:
            say(f"{f.name}: ERROR {f.error}")
    if not args.json:
        say(
            f"session {report.session_id}: {len(report.files)} files, {report.failed} failed "
            f"({report.rule} at {report.station}); results in "
            f"batch/session-{report.session_id:06d}"
        )
    return EXIT_INPUT if (report.failed or missing) else EXIT_OK


def _file_record(f: FileResult, annotated: Path | None) -> dict[str, Any]:
    """One processed file as ``detect --json`` prints it."""
    return {
        "source": f.name,
        "kind": f.kind,
        "error": f.error,
        "verdict": str(f.verdict) if f.verdict else None,
        "compliant": f.compliant,
        "violating": f.violating,
        "frames": f.frames,
        "episodes": f.episodes,
        "annotated": str(annotated) if annotated else None,
        "detections": [
            {
                "frame": r.frame,
                "class": r.class_name,
                "role": r.role,
                "status": r.status,
                "confidence": round(r.confidence, 4),
                "box": [round(v, 1) for v in (r.x1, r.y1, r.x2, r.y2)],
            }
            for r in f.rows
        ],
    }


def cmd_trials(args: argparse.Namespace) -> int:
    """Say what trial runs have left in the store; delete it with --delete."""
    from core.analytics.trials import delete_trial_results, trial_results

    if args.delete:
        gone = delete_trial_results(store(), settings().user or None)
        emit(asdict(gone)) if args.json else say(gone.summary())
    else:
        kept = trial_results(store())
        emit(asdict(kept)) if args.json else say(kept.describe())
    return EXIT_OK


def _print_eval(res, label: str = "") -> None:  # type: ignore[no-untyped-def]
    say(
        f"{label}{res.describe()}: mAP50 {res.map50:.3f}, mAP50-95 {res.map50_95:.3f}, "
        f"{res.ms_per_image:.0f} ms/image"
    )
    for name, ap in res.per_class_ap50.items():
        say(f"  AP50 {name}: {ap:.3f}")
    say(f"  hands found (any class, conf 0.25): {res.hand_recall:.0%}")


def cmd_evaluate(args: argparse.Namespace) -> int:
    from core.vision.evaluate import evaluate

    res = evaluate(
        weights(args),
        args.data,
        split=args.split,
        imgsz=args.imgsz,
        tiles=getattr(args, "tiles", None),
        backend=args.backend,
        agnostic=args.agnostic,
        through_app=args.app_path,
    )
    if args.json:
        emit(res.as_dict())
    else:
        _print_eval(res)
    return EXIT_OK


def _score_line(r) -> str:  # type: ignore[no-untyped-def]
    per = ", ".join(f"{c} {ap:.3f}" for c, ap in r.per_class_ap50.items())
    return (
        f"{r.data_set} | {r.split} | {r.images} | {'+'.join(r.labelled)} | {r.map50:.3f} | "
        f"{per} | {r.agnostic_ap50:.3f}{'*' if r.partial else ''} | {r.hand_recall:.0%}"
    )


def cmd_scorecard(args: argparse.Namespace) -> int:
    from core.vision.scorecard import find_data_sets, scorecard

    roots = [Path(d) for d in args.data] or [PROJECT_ROOT.parent / "shared" / "datasets"]
    if not args.json:
        say("data set | split | images | labels | mAP50 | AP50 per class | any-hand AP50 | found")
    printer = None if args.json else (lambda r: say(_score_line(r)))
    rows = scorecard(weights(args), find_data_sets(roots), imgsz=args.imgsz, progress=printer)
    if args.json:
        emit([{**asdict(r), "note": r.note} for r in rows])
    elif any(r.partial for r in rows):
        say("* lower bound: the set leaves a class unlabelled, whose hands count as false boxes")
    return EXIT_OK


def cmd_wideview(args: argparse.Namespace) -> int:
    from core.training.wideview import build_wideview

    wv = build_wideview(Path(args.dataset), Path(args.out), n=args.n, seed=args.seed)
    c = wv.composites
    if args.json:
        emit(
            {
                "data": str(wv.data_yaml),
                "images": c.images,
                "boxes": c.boxes,
                "sources": len(c.sources),
            }
        )
    else:
        say(
            f"{c.images} wide-view canvases ({c.boxes} boxes) from {len(c.sources)} test "
            f"images -> {wv.data_yaml}"
        )
    return EXIT_OK


def cmd_bench(args: argparse.Namespace) -> int:
    from core.pipeline.bench import run_bench

    res = run_bench(
        Path(args.source),
        weights(args),
        imgsz=args.imgsz,
        baselines=tuple(b for b in args.baselines.split(",") if b),
        data=Path(args.data) if args.data else _default_data(),
        live_child=not args.no_live,
    )
    if args.json:
        emit(res.as_dict())
    else:
        for line in res.lines():
            say(line)
    return EXIT_OK


def _default_data() -> Path:
    """The gloves data set beside the project, else the fixture set that ships with it."""
    shared = PROJECT_ROOT.parent / "shared" / "datasets" / "gloves"
    return shared if shared.is_dir() else PROJECT_ROOT / "tests" / "fixtures" / "gloves-mini"


def cmd_export(args: argparse.Namespace) -> int:
    from core.vision.detector import export_model

    w = weights(args)
    if not args.int8:
        path = export_model(w, args.backend, args.imgsz)
        emit({"weights": w.name, "export": str(path)}) if args.json else say(str(path))
        return EXIT_OK
    from core.vision.openvino_int8 import build_int8

    data = Path(args.data) if args.data else _default_data()
    gate = Path(args.gate_data) if args.gate_data else None
    report = build_int8(w, data, gate, args.imgsz, args.calibration, args.max_drop)
    if args.json:
        emit(report.as_dict())
    else:
        say(report.describe())
    return EXIT_OK if report.active else EXIT_UNUSABLE


def register(sub: Subparsers) -> None:
    """The commands of this module on the CLI's sub-parsers."""
    s = settings()
    _add_detect(sub)
    _add_evaluate(sub)
    _add_data_set_tools(sub)
    _add_export(sub, s.imgsz)
    _add_bench(sub, s.imgsz)


def _add_detect(sub: Subparsers) -> None:
    d = sub.add_parser("detect", help="detect gloved and bare hands in images, folders, videos")
    d.add_argument("sources", nargs="+", metavar="SOURCE")
    add_weights(d)
    add_inference(d)
    d.add_argument(
        "--backend",
        choices=BACKENDS,
        default=DEFAULTS.backend,
        help="inference runtime for videos and images (default %(default)s)",
    )
    d.add_argument(
        "--station",
        default=TRIAL_STATION,
        help="the station these files show: its rule judges them and they count in its "
        "figures (default: a trial run, counted nowhere; see `trials`)",
    )
    d.add_argument("--save", metavar="DIR", help="also copy annotated outputs here")
    d.add_argument(
        "--tiles",
        type=tiles_arg,
        metavar="SIZE[:OVERLAP[:nms|wbf]]",
        help="sliced inference for small hands in wide views, e.g. 320:0.25 "
        "(default: the station's setting)",
    )
    add_json(d)
    d.set_defaults(func=cmd_detect)
    tr = sub.add_parser("trials", help="what trial runs (detect without --station) left")
    tr.add_argument("--delete", action="store_true", help="delete their results and files")
    add_json(tr)
    tr.set_defaults(func=cmd_trials)


def _add_evaluate(sub: Subparsers) -> None:
    for name, helptext, tiled in (
        ("evaluate", "mAP of a model on a data set split", False),
        ("evaluate-tiled", "mAP with tiled (sliced) inference", True),
    ):
        e = sub.add_parser(name, help=helptext)
        e.add_argument("--data", required=True, help="YOLO data.yaml or data set folder")
        e.add_argument("--split", default="test")
        add_weights(e)
        e.add_argument("--imgsz", type=int, help="default: the size the model was trained at")
        e.add_argument("--backend", choices=BACKENDS, default="pytorch")
        e.add_argument(
            "--agnostic",
            action="store_true",
            help="score one class, any hand (glove or bare): does the model find the hands",
        )
        e.add_argument(
            "--app-path",
            action="store_true",
            help="score full frames through GloveWatch's own detector on --backend (its "
            "post-processing, one box per hand, the OpenVINO runtime and its INT8 build) "
            "instead of Ultralytics' validator",
        )
        if tiled:
            e.add_argument(
                "--tiles",
                type=tiles_arg,
                default=tiles_arg("640:0.25"),
                help="SIZE[:OVERLAP[:nms|wbf]], or 'none' (default 640:0.25)",
            )
        add_json(e)
        e.set_defaults(func=cmd_evaluate)


def _add_data_set_tools(sub: Subparsers) -> None:
    sc = sub.add_parser(
        "scorecard", help="score a model on every split of every data set, also class-agnostic"
    )
    sc.add_argument(
        "--data",
        nargs="*",
        default=[],
        metavar="DIR",
        help="data sets or folders of data sets (default: ../shared/datasets and its sub-folders)",
    )
    add_weights(sc)
    sc.add_argument("--imgsz", type=int, help="default: the size the model was trained at")
    add_json(sc)
    sc.set_defaults(func=cmd_scorecard)

    wv = sub.add_parser("wideview", help="generate the wide-view test set (test split only)")
    wv.add_argument("--out", required=True, metavar="DIR")
    wv.add_argument(
        "--dataset",
        default=str(PROJECT_ROOT.parent / "shared" / "datasets" / "gloves"),
        help="YOLO data set folder whose test split is used",
    )
    wv.add_argument("--n", type=int, help="canvases (default: every test image once)")
    wv.add_argument("--seed", type=int, default=0)
    add_json(wv)
    wv.set_defaults(func=cmd_wideview)


def _add_export(sub: Subparsers, imgsz: int) -> None:
    ex = sub.add_parser(
        "export",
        help="export a model for the OpenVINO (or ONNX) runtime; --int8 builds a quantised "
        "copy that is used only if it keeps its accuracy",
    )
    add_weights(ex)
    ex.add_argument("--backend", choices=("openvino", "onnx"), default="openvino")
    ex.add_argument("--imgsz", type=int, default=imgsz)
    ex.add_argument("--int8", action="store_true", help="NNCF INT8 build with accuracy gate")
    ex.add_argument(
        "--data", help="data set whose training images calibrate (default: the gloves set)"
    )
    ex.add_argument("--gate-data", help="data set whose test split gates (default: --data)")
    ex.add_argument("--calibration", type=int, default=200, help="calibration images")
    ex.add_argument(
        "--max-drop", type=float, default=0.01, help="mAP50 the INT8 build may lose (0.01)"
    )
    add_json(ex)
    ex.set_defaults(func=cmd_export)


def _add_bench(sub: Subparsers, imgsz: int) -> None:
    bn = sub.add_parser(
        "bench",
        help="live pipeline fps (FP32, INT8) vs Ultralytics' track loops and the runtime limit",
    )
    bn.add_argument("--source", required=True, metavar="VIDEO")
    add_weights(bn)
    bn.add_argument("--imgsz", type=int, default=imgsz)
    bn.add_argument(
        "--baselines",
        default="openvino,openvino_int8",
        help="Ultralytics loops to run beside: openvino, openvino_int8, pytorch ('' none)",
    )
    bn.add_argument("--data", help="calibration set of Ultralytics' INT8 export")
    bn.add_argument("--no-live", action="store_true", help="skip `core live`'s memory run")
    add_json(bn)
    bn.set_defaults(func=cmd_bench)
