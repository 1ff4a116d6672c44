"""Commands for many cameras: worker, ingest, fleet (worker keys, broker configuration, dead
letters), bench-fleet, fleet-faults."""

from __future__ import annotations

import argparse
import os
import signal
import threading
from pathlib import Path
from typing import Any

from core.cli.common import Subparsers, add_json, emit, say, store
from core.config import settings
from core.errors import EXIT_OK, EXIT_UNUSABLE, ConfigError


def _on_term(stop: Any) -> None:
    """SIGTERM (a service manager stopping us) ends as cleanly as Ctrl+C."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop())


def broker_url(args: argparse.Namespace) -> str:
    """``--broker`` (``none`` for no broker), else GLOVEWATCH_MQTT_URL."""
    raw = getattr(args, "broker", None)
    if raw is not None:
        return "" if raw.strip().lower() in ("", "none") else raw.strip()
    return settings().mqtt_url


def cmd_worker(args: argparse.Namespace) -> int:
    from core.comms import keys
    from core.comms.bus import MqttOutlet
    from core.pipeline.cameras import load_config
    from core.pipeline.outlets import DirectOutlet, Outlet
    from core.pipeline.worker import Worker
    from core.training.registry import active_weights

    cfg = load_config(Path(args.config), args.name)
    url = broker_url(args)
    st = store()
    outlet: Outlet
    if url:
        path = Path(args.outbox) if args.outbox else settings().outbox_dir / f"{cfg.name}.jsonl"
        key_file = Path(args.key_file) if args.key_file else None
        cred = keys.load(cfg.name, key_file, os.environ.get("GLOVEWATCH_WORKER_KEY", ""))
        outlet = MqttOutlet(
            url, cred, os.getpid(), path, args.resend_after, settings().evidence_dir
        )
    else:
        outlet = DirectOutlet(st)
    weights = cfg.weights or active_weights()
    worker = Worker(cfg, outlet, st, weights)
    _on_term(worker.stop)
    if not args.json:
        say(
            f"worker {cfg.name}: {len(cfg.cameras)} camera(s), {cfg.backend}, "
            f"{'MQTT ' + url if url else 'writing to the store'}; Ctrl+C stops"
        )
    try:
        report = worker.run(args.seconds)
    except KeyboardInterrupt:
        worker.stop()
        raise
    if args.json:
        emit(report.as_dict())
    else:
        for c in report.cameras:
            say(
                f"  {c.name} ({c.station}): {c.status}, {c.fps} fps of {c.target_fps}, "
                f"{c.analysed} analysed, {c.skipped} skipped, {c.missed} missed, "
                f"{c.episodes} episodes"
            )
        say(
            f"worker {report.worker}: {report.held}/{len(report.cameras)} cameras kept their "
            f"rate; CPU {report.cpu_per_camera:.3f} s per camera-second"
        )
    return EXIT_OK


def cmd_ingest(args: argparse.Namespace) -> int:
    from core.comms.auth import load_secret
    from core.comms.ingest import Ingester

    url = broker_url(args)
    if not url:
        raise ConfigError(
            "No broker configured: set GLOVEWATCH_MQTT_URL (e.g. "
            "mqtt://127.0.0.1:1883) or give --broker."
        )
    stop = threading.Event()
    _on_term(stop.set)
    if args.seconds:
        threading.Timer(args.seconds, stop.set).start()
    ingester = Ingester(store(), load_secret(settings().home), settings().evidence_dir)
    if not args.json:
        say(f"ingesting from {url} into {store().db.where}; Ctrl+C stops")
    try:
        stats = ingester.run(url, stop, client_id=args.client_id)
    except KeyboardInterrupt:
        stop.set()
        stats = ingester.stats()
    if args.json:
        emit(vars(stats))
    else:
        say(
            f"applied {stats.applied}, duplicates {stats.duplicates}, statuses "
            f"{stats.statuses}, failed {stats.failed}, rejected {stats.rejected}, refused "
            f"{stats.refused}, stale {stats.stale}"
        )
    return EXIT_OK


def cmd_add_worker(args: argparse.Namespace) -> int:
    from core.comms import keys
    from core.comms.auth import load_secret

    cred = keys.issue(store(), load_secret(settings().home, create=True), args.name)
    if args.key_file:
        keys.save(cred, Path(args.key_file))
    if args.json:
        emit({"worker": cred.worker, "key": cred.text(), "fingerprint": cred.fingerprint})
    else:
        say(f"worker {cred.worker}: its key (shown once; any earlier key of it stops working):")
        say(f"  {cred.text()}")
        say(
            "give it to the worker with --key-file or GLOVEWATCH_WORKER_KEY, then write the "
            "broker's accounts again: python -m core fleet mosquitto-config --out DIR"
        )
    return EXIT_OK


def cmd_revoke_worker(args: argparse.Namespace) -> int:
    from core.comms import keys

    done = keys.revoke(store(), args.name)
    say(f"worker {args.name}: {'key revoked' if done else 'had no valid key'}")
    return EXIT_OK if done else EXIT_UNUSABLE


def cmd_workers(args: argparse.Namespace) -> int:
    rows = store().fleet.worker_keys()
    if args.json:
        emit([vars(r) for r in rows])
    for r in [] if args.json else rows:
        state = f"revoked {r.revoked_at}" if r.revoked_at else "valid"
        say(f"{r.name}: key #{r.generation} {r.fingerprint} issued {r.created_at}, {state}")
    return EXIT_OK


def cmd_mosquitto_config(args: argparse.Namespace) -> int:
    from core.comms import keys, mosquitto
    from core.comms.auth import load_secret

    users = keys.broker_accounts(store(), load_secret(settings().home))
    tls = (
        mosquitto.Tls(Path(args.cert), Path(args.key), Path(args.ca) if args.ca else None)
        if args.cert and args.key
        else None
    )
    if tls is None and args.plain_port is None:
        raise ConfigError("Give --cert and --key (the broker's TLS files), or --plain-port.")
    conf = mosquitto.write_config(Path(args.out), users, tls, args.port, args.plain_port)
    say(f"wrote {conf} with {len(users) - 1} worker account(s) and the ingester's")
    return EXIT_OK


def cmd_dead_letters(args: argparse.Namespace) -> int:
    rows = store().fleet.dead_letters(args.limit)
    if args.json:
        emit([vars(r) for r in rows])
    for r in [] if args.json else rows:
        say(f"{r.at} {r.topic}: {r.reason}")
    return EXIT_OK


def _register_keys(sub: Subparsers) -> None:
    fl = sub.add_parser("fleet", help="worker keys, the broker's configuration, dead letters")
    fsub = fl.add_subparsers(dest="fleet_command", required=True)
    aw = fsub.add_parser("add-worker", help="issue a worker's key (printed once)")
    aw.add_argument("name")
    aw.add_argument("--key-file", help="also write the key to this file (mode 0600)")
    add_json(aw)
    aw.set_defaults(func=cmd_add_worker)
    rw = fsub.add_parser("revoke-worker", help="stop accepting a worker's messages")
    rw.add_argument("name")
    rw.set_defaults(func=cmd_revoke_worker)
    ws = fsub.add_parser("workers", help="workers with keys (fingerprints, never keys)")
    add_json(ws)
    ws.set_defaults(func=cmd_workers)
    mc = fsub.add_parser("mosquitto-config", help="write mosquitto.conf, its password file and ACL")
    mc.add_argument("--out", required=True, help="folder for mosquitto.conf, passwd, acl")
    mc.add_argument("--cert", help="the broker's TLS certificate (PEM)")
    mc.add_argument("--key", help="the broker's TLS private key (PEM)")
    mc.add_argument("--ca", help="CA file, to require client certificates signed by it")
    mc.add_argument("--port", type=int, default=8883, help="TLS listener port")
    mc.add_argument("--plain-port", type=int, help="also a plain loopback listener (tests)")
    mc.set_defaults(func=cmd_mosquitto_config)
    dl = fsub.add_parser("dead-letters", help="messages the ingester refused, and why")
    dl.add_argument("--limit", type=int, default=50)
    add_json(dl)
    dl.set_defaults(func=cmd_dead_letters)


def cmd_bench_fleet(args: argparse.Namespace) -> int:
    from core.pipeline.fleetbench import FleetBenchConfig, run_fleet_bench

    counts = [int(x) for x in str(args.cameras).split(",") if x.strip()]
    if not counts or min(counts) < 1:
        say("give --cameras N (or a list like 2,4,8)")
        return EXIT_UNUSABLE
    result = run_fleet_bench(
        FleetBenchConfig(
            cameras=tuple(counts),
            seconds=args.seconds,
            fps=args.fps,
            backend=args.backend,
            imgsz=args.imgsz,
            broker=args.broker,
            weights=Path(args.weights) if args.weights else None,
            still_share=args.still,
            motion=not args.no_motion,
            store_url=args.store,
        ),
        log=None if args.json else say,
    )
    if args.json:
        emit(result.as_dict())
    else:
        for r in result.runs:
            say(
                f"{r.cameras} cameras: held {r.held}/{r.cameras}, fps min {r.fps_min}, "
                f"latency p50 {r.latency_p50_ms} ms p95 {r.latency_p95_ms} ms, CPU "
                f"{r.cpu_per_camera} s/camera-s, analysed {r.analysed} skipped {r.skipped}"
            )
        say(f"cameras held without falling behind: {result.max_held}")
        sg = result.signing
        say(
            f"ingester, {sg['messages']} coverage messages: {sg['signed_per_s']} msg/s signed "
            f"and verified, {sg['unsigned_per_s']} msg/s unsigned; HMAC sign + verify "
            f"{sg['sign_verify_us']} us per message"
        )
    return EXIT_OK


def cmd_fleet_faults(args: argparse.Namespace) -> int:
    from core.pipeline.faults import FaultConfig, run_faults

    result = run_faults(
        FaultConfig(
            cameras=args.cameras,
            seconds=args.seconds,
            backend=args.backend,
            imgsz=args.imgsz,
            store_url=args.store,
        ),
        log=None if args.json else say,
    )
    if args.json:
        emit(result.as_dict())
    else:
        for line in result.summary():
            say(line)
    return EXIT_OK if result.ok else EXIT_UNUSABLE


def register(sub: Subparsers) -> None:
    _register_worker(sub)
    ig = sub.add_parser("ingest", help="write what camera workers publish into the store")
    ig.add_argument("--broker", help="mqtt://host:port (default GLOVEWATCH_MQTT_URL)")
    ig.add_argument(
        "--client-id",
        default="glovewatch-ingester",
        help="MQTT client id (its session keeps messages while it is away)",
    )
    ig.add_argument("--seconds", type=float, help="stop after this long (default: run on)")
    add_json(ig)
    ig.set_defaults(func=cmd_ingest)
    _register_keys(sub)
    _register_benches(sub)


def _register_worker(sub: Subparsers) -> None:
    wk = sub.add_parser("worker", help="watch several cameras in one process (cameras.yaml)")
    wk.add_argument("--config", required=True, help="cameras.yaml (see docs/fleet.md)")
    wk.add_argument(
        "--name",
        help="worker name (default: the config's, GLOVEWATCH_WORKER_NAME or the host name)",
    )
    wk.add_argument(
        "--broker",
        help="mqtt://host:port, or 'none' to write to the store (default GLOVEWATCH_MQTT_URL)",
    )
    wk.add_argument("--outbox", help="outbox journal (default <data>/outbox/<worker>.jsonl)")
    wk.add_argument(
        "--key-file",
        help="the worker's key (default: GLOVEWATCH_WORKER_KEY; core fleet add-worker)",
    )
    wk.add_argument(
        "--resend-after",
        type=float,
        default=30.0,
        help="seconds before an unacknowledged message is sent again",
    )
    wk.add_argument("--seconds", type=float, help="stop after this long (default: run on)")
    add_json(wk)
    wk.set_defaults(func=cmd_worker)


def _register_benches(sub: Subparsers) -> None:
    bf = sub.add_parser(
        "bench-fleet", help="cameras one machine holds at 5 fps: worker, broker, ingester, store"
    )
    bf.add_argument("--cameras", default="8", help="N, or a list to sweep (2,4,8)")
    bf.add_argument("--seconds", type=float, default=30.0, help="per camera count")
    bf.add_argument("--fps", type=float, default=5.0, help="analysis rate per camera")
    bf.add_argument("--backend", default="openvino", choices=("pytorch", "onnx", "openvino"))
    bf.add_argument("--imgsz", type=int, default=settings().imgsz)
    bf.add_argument("--weights", help="weights file (default: the active model)")
    bf.add_argument(
        "--broker",
        default="auto",
        help="'auto' starts a private mosquitto; else mqtt://... (default auto)",
    )
    bf.add_argument(
        "--still",
        type=float,
        default=0.5,
        help="share of cameras that watch still scenes (motion gating)",
    )
    bf.add_argument("--no-motion", action="store_true", help="switch motion gating off")
    bf.add_argument(
        "--store",
        help="store URL for the run's rows (default: GLOVEWATCH_DB_URL "
        "if PostgreSQL, else a private SQLite file)",
    )
    add_json(bf)
    bf.set_defaults(func=cmd_bench_fleet)

    ff = sub.add_parser(
        "fleet-faults",
        help="kill the ingester, the broker and a worker "
        "mid-run; check nothing was lost or doubled",
    )
    ff.add_argument("--cameras", type=int, default=3)
    ff.add_argument("--seconds", type=float, default=60.0, help="length of the run")
    ff.add_argument("--backend", default="openvino", choices=("pytorch", "onnx", "openvino"))
    ff.add_argument("--imgsz", type=int, default=320)
    ff.add_argument(
        "--store",
        help="store URL for the run's rows (default: GLOVEWATCH_DB_URL "
        "if PostgreSQL, else a private SQLite file)",
    )
    add_json(ff)
    ff.set_defaults(func=cmd_fleet_faults)
