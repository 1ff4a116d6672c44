"""The fleet fault test: ``python -m core fleet-faults --json``.

Two camera workers (files replayed as cameras, bare and gloved hands so that episodes open
and close), a Mosquitto broker, the ingester and a store run as separate processes, with
authentication on as production runs it (a key per worker, broker accounts and ACL). Mid-run
the ingester, then the broker, then one worker are killed with SIGKILL and started again.
At the end the workers are stopped cleanly and the store is compared with what the workers
emitted, read from their outbox journals (a message is in the journal from the moment it
was emitted):

- every episode a worker closed (an ``end`` event) is in the store exactly once, closed,
  with the figures of its end; episodes the killed worker left open are closed by recovery
  (its last will) at their last sighting; no other episode is there;
- the watched seconds in the store equal those of every coverage message the workers
  emitted: none lost, none counted twice.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from core.analytics.history import per_station
from core.comms.auth import load_secret
from core.comms.keys import broker_accounts, issue_in
from core.comms.outbox import read_journal
from core.config import settings
from core.errors import GloveWatchError
from core.pipeline.broker import Mosquitto
from core.pipeline.fleetbench import (
    camera_yaml,
    child_env,
    last_json,
    python_core,
    scene_clips,
    stop_json,
)
from core.storage import Store, close_store, open_store
from core.storage.filters import HistoryFilter

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FaultConfig:
    cameras: int = 3  # per worker
    seconds: float = 60.0
    backend: str = "openvino"
    imgsz: int = 320
    workers: int = 2
    resend_after_s: float = 5.0
    store_url: str | None = None  # None: GLOVEWATCH_DB_URL if PostgreSQL, else private SQLite


@dataclass(frozen=True)
class FaultResult:
    store: str
    timeline: list[str]
    episodes_emitted: int  # distinct episode keys in the journals
    closed_by_workers: int  # with an end event
    closed_by_recovery: int  # left open by the killed worker, closed in the store
    episodes_stored: int  # rows at the test's stations
    missing: list[str]  # keys not in the store
    not_closed: list[str]
    wrong_figures: list[str]  # stored duration differs from the end event's
    extra: int  # stored rows whose key no worker emitted
    coverage_messages: int
    coverage_rows: int
    covered_s_emitted: float
    covered_s_stored: float
    ingester: dict[str, Any] = field(default_factory=dict)
    workers: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            not self.missing
            and not self.not_closed
            and not self.wrong_figures
            and self.extra == 0
            and self.episodes_emitted > 0
            and math.isclose(
                self.covered_s_emitted,
                self.covered_s_stored,
                rel_tol=1e-9,
                abs_tol=1e-6 * max(1, self.coverage_rows),
            )
        )

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ok"] = self.ok
        return d

    def lines(self) -> list[str]:
        """The timeline and the summary."""
        return [*self.timeline, *self.summary()]

    def summary(self) -> list[str]:
        return [
            f"episodes emitted: {self.episodes_emitted} ({self.closed_by_workers} closed by "
            f"their worker, {self.closed_by_recovery} left open by the killed worker and "
            f"closed by recovery); stored: {self.episodes_stored}; missing "
            f"{len(self.missing)}, not closed {len(self.not_closed)}, wrong figures "
            f"{len(self.wrong_figures)}, extra {self.extra}",
            f"coverage: {self.coverage_messages} messages, {self.coverage_rows} second "
            f"rows; watched seconds emitted {self.covered_s_emitted:.3f}, stored "
            f"{self.covered_s_stored:.3f}",
            f"ingester (last run): {self.ingester}",
            "OK: nothing lost, nothing counted twice" if self.ok else "FAILED",
        ]


class _Clock:
    def __init__(self, say: Callable[[str], None], lines: list[str] | None = None):
        self.t0 = time.monotonic()
        self.say = say
        self.lines: list[str] = lines if lines is not None else []

    def note(self, text: str) -> None:
        line = f"{time.monotonic() - self.t0:6.1f} s: {text}"
        self.lines.append(line)
        self.say(line)

    def until(self, at_s: float) -> None:
        delay = self.t0 + at_s - time.monotonic()
        if delay > 0:
            time.sleep(delay)


def run_faults(cfg: FaultConfig, log: Callable[[str], None] | None = None) -> FaultResult:
    """Run the fault test (see module docstring)."""
    say = log or (lambda _text: None)
    token = uuid.uuid4().hex[:6]
    with tempfile.TemporaryDirectory(prefix="gw-faults-") as tmp_name:
        tmp = Path(tmp_name)
        store_url = cfg.store_url or (
            settings().db_url
            if settings().db_url.startswith(("postgresql", "postgres"))
            else f"sqlite:///{tmp / 'faults.sqlite'}"
        )
        store = open_store(store_url)
        try:
            return _run(cfg, tmp, store, store_url, token, say)
        finally:
            close_store(store)


def _spawn(args: list[str], env: dict[str, str], out: Path | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        args,
        env=env,
        text=True,
        stdout=subprocess.PIPE if out is None else open(out, "w"),
        stderr=subprocess.DEVNULL,
    )


@dataclass
class _Fleet:
    """The processes of one fault run, and how to start each of them (again)."""

    cfg: FaultConfig
    tmp: Path
    token: str
    env: dict[str, str]
    names: list[str]  # worker names
    configs: list[Path]  # their cameras.yaml
    journals: list[Path]  # their outbox journals
    creds: list[str]  # their worker keys
    procs: list[subprocess.Popen[str]] = field(default_factory=list)

    def worker(self, i: int) -> subprocess.Popen[str]:
        """Start worker ``i``, its output in a file of its own (a restart gets a new one)."""
        proc = _spawn(
            python_core(
                "worker",
                "--config",
                str(self.configs[i]),
                "--json",
                "--outbox",
                str(self.journals[i]),
                "--resend-after",
                str(self.cfg.resend_after_s),
            ),
            {**self.env, "GLOVEWATCH_WORKER_KEY": self.creds[i]},
            self.tmp / f"{self.names[i]}-{time.monotonic_ns()}.out",
        )
        self.procs.append(proc)
        return proc

    def ingester(self) -> subprocess.Popen[str]:
        """Start the ingester (the same client id each time, as a restarted service has)."""
        proc = _spawn(
            python_core("ingest", "--json", "--client-id", f"ingest-{self.token}"), self.env
        )
        self.procs.append(proc)
        return proc

    def kill(self) -> None:
        """SIGKILL whatever is still running."""
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def _write_configs(
    cfg: FaultConfig, tmp: Path, token: str
) -> tuple[list[str], list[Path], list[Path], set[str]]:
    """Each worker's cameras.yaml (its cameras replay the scene clips): the worker names,
    their config files, their journal paths and the test's stations."""
    still, moving = scene_clips(tmp / "clips")
    clips = [*still, *moving]
    names = [f"faults-{token}-{chr(ord('a') + w)}" for w in range(cfg.workers)]
    configs, journals = [], []
    for w, name in enumerate(names):
        cams = [
            (f"faults {token} {w}{i}", clips[(w * cfg.cameras + i) % len(clips)])
            for i in range(cfg.cameras)
        ]
        path = tmp / f"{name}.yaml"
        path.write_text(camera_yaml(name, cams, 5.0, cfg.backend, cfg.imgsz, True, None))
        configs.append(path)
        journals.append(tmp / f"{name}.jsonl")
    stations = {f"faults {token} {w}{i}" for w in range(cfg.workers) for i in range(cfg.cameras)}
    return names, configs, journals, stations


def _run(
    cfg: FaultConfig,
    tmp: Path,
    store: Store,
    store_url: str,
    token: str,
    say: Callable[[str], None],
) -> FaultResult:
    names, configs, journals, stations = _write_configs(cfg, tmp, token)
    # with authentication on, as production runs: a key per worker, broker accounts and ACL
    creds = [issue_in(store, tmp / "home", name) for name in names]
    users = broker_accounts(store, load_secret(tmp / "home"))
    broker = Mosquitto(tmp / "broker", users=users).start()
    env = child_env(tmp / "home", store_url, broker.url)
    fleet = _Fleet(cfg, tmp, token, env, names, configs, journals, creds)
    clock = _Clock(say)
    try:
        ing = fleet.ingester()
        workers = [fleet.worker(i) for i in range(cfg.workers)]
        clock.note(
            f"started broker, ingester, {cfg.workers} workers x {cfg.cameras} cameras "
            f"({store.db.dialect} store)"
        )
        _wait_online(store, names, timeout_s=600)
        clock = _Clock(say, clock.lines)
        clock.note(f"every worker online: the run begins ({environment_note()})")
        ing = _faults(fleet, broker, store, clock, ing, workers)
        reports = _stop_workers(workers, tmp)
        clock.note("workers stopped cleanly (episodes closed, outboxes flushed)")
        expected = _expected(journals)
        _wait_applied(store, expected, timeout_s=120)
        stats = stop_json(ing)
        clock.note("everything applied; ingester stopped")
    finally:
        fleet.kill()
        broker.stop()
    return _compare(store, expected, stations, clock.lines, stats, reports)


def _faults(
    fleet: _Fleet,
    broker: Mosquitto,
    store: Store,
    clock: _Clock,
    ing: subprocess.Popen[str],
    workers: list[subprocess.Popen[str]],
) -> subprocess.Popen[str]:
    """Kill the ingester, the broker, then the first worker, each at its point of the run,
    and start each again; watch on to the end of the run. Returns the ingester now running
    (``workers[0]`` is replaced by the restarted worker)."""
    s = fleet.cfg.seconds
    clock.until(0.20 * s)
    ing.send_signal(signal.SIGKILL)
    ing.wait()
    clock.note(f"SIGKILL ingester (pid {ing.pid})")
    clock.until(0.30 * s)
    ing = fleet.ingester()
    clock.note(f"ingester started again (pid {ing.pid})")
    clock.until(0.45 * s)
    broker.kill()
    clock.note("SIGKILL broker")
    clock.until(0.55 * s)
    broker.restart()
    clock.note("broker started again")
    clock.until(0.65 * s)
    victim, name = workers[0], fleet.names[0]
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    clock.note(f"SIGKILL worker {name} (pid {victim.pid})")
    clock.until(0.72 * s)
    workers[0] = fleet.worker(0)
    clock.note(f"worker {name} started again (pid {workers[0].pid})")
    _wait_online(store, [name], timeout_s=600, pid=workers[0].pid)
    clock.note(f"worker {name} online again (model loaded), watching")
    clock.until(max(s, time.monotonic() - clock.t0 + 0.2 * s))
    return ing


def _stop_workers(workers: list[subprocess.Popen[str]], tmp: Path) -> list[dict[str, Any]]:
    """SIGTERM every worker, wait for it to finish; the report each worker process printed
    (the killed one's too, from its first output file, if it printed one)."""
    for p in workers:
        p.send_signal(signal.SIGTERM)
    for p in workers:
        try:
            p.wait(120)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    reports = []
    for f in sorted(tmp.glob("faults-*.out")):
        rep = last_json(f.read_text())
        if rep:
            reports.append({k: rep.get(k) for k in ("worker", "run", "seconds", "held", "outbox")})
    return reports


def _wait_online(store: Store, names: list[str], timeout_s: float, pid: int | None = None) -> None:
    """Until every worker of ``names`` reports online (the process ``pid``, if given)."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        online = {
            w.name
            for w in store.fleet.workers()
            if w.status == "online" and (pid is None or w.details.get("pid") == pid)
        }
        if set(names) <= online:
            return
        time.sleep(0.5)
    raise GloveWatchError("the workers did not come online (model load or broker problem)")


@dataclass
class _Expected:
    ends: dict[str, dict[str, Any]]  # key -> row of its end event
    keys: set[str]
    coverage_ids: list[str]
    coverage_rows: int
    watched_s: float


def _expected(journals: list[Path]) -> _Expected:
    ends: dict[str, dict[str, Any]] = {}
    keys: set[str] = set()
    ids: list[str] = []
    rows = 0
    watched = 0.0
    for path in journals:
        if not path.exists():
            continue
        messages, _acked = read_journal(path)
        for msg in messages:
            body = msg["body"]
            if msg["type"] == "episode":
                keys.add(body["key"])
                if body["kind"] == "end":
                    ends[body["key"]] = body["row"]
            else:
                ids.append(msg["id"])
                rows += len(body["rows"])
                watched += sum(float(r[1]) for r in body["rows"])
    return _Expected(ends, keys, ids, rows, watched)


def _wait_applied(store: Store, exp: _Expected, timeout_s: float) -> None:
    end = time.monotonic() + timeout_s
    todo_cov = list(exp.coverage_ids)
    todo_keys = sorted(exp.keys)
    while time.monotonic() < end:
        todo_cov = [i for i in todo_cov if not store.fleet.applied(i)]
        todo_keys = [k for k in todo_keys if store.events.id_by_key(k) is None]
        if not todo_cov and not todo_keys:
            return
        time.sleep(1.0)
    log.warning(
        "not applied after %.0f s: %d coverage messages, %d episodes",
        timeout_s,
        len(todo_cov),
        len(todo_keys),
    )


def _compare(
    store: Store,
    exp: _Expected,
    stations: set[str],
    timeline: list[str],
    stats: dict[str, Any],
    reports: list[dict[str, Any]],
) -> FaultResult:
    missing, not_closed, wrong = [], [], []
    by_recovery = 0
    for key in sorted(exp.keys):
        event_id = store.events.id_by_key(key)
        rec = store.events.get(event_id) if event_id is not None else None
        if rec is None:
            missing.append(key)
            continue
        if rec.state != "closed":
            not_closed.append(key)
        end = exp.ends.get(key)
        if end is None:
            by_recovery += 1
        elif (
            abs(rec.duration_s - float(end["duration_s"])) > 1e-6 or rec.ended_at != end["ended_at"]
        ):
            wrong.append(key)
    today = date.today()
    f = HistoryFilter(start=today - timedelta(days=1), end=today, stations=tuple(sorted(stations)))
    stored_rows = store.events.matching(f, limit=1_000_000)
    extra = len(stored_rows) - (len(exp.keys) - len(missing))
    covered = sum(s.watched_s for s in per_station(store, f))
    return FaultResult(
        store.db.dialect,
        timeline,
        len(exp.keys),
        len(exp.ends),
        by_recovery,
        len(stored_rows),
        missing,
        not_closed,
        wrong,
        extra,
        len(exp.coverage_ids),
        exp.coverage_rows,
        round(exp.watched_s, 6),
        round(covered, 6),
        stats,
        reports,
    )


def environment_note() -> str:
    """Load average and CPUs, for the report (a shared machine changes the timing)."""
    return f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
