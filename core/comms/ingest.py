"""The ingester: the one process that writes what camera workers publish into the store.

It subscribes (a persistent MQTT session, so messages queued while it was away are delivered
when it comes back) to every worker's ``episodes``, ``coverage`` and ``status`` topics and
trusts nothing a message says before it is checked (see docs/fleet-security.md):

1. the envelope must be signed (:mod:`core.comms.auth`) with the current key of the worker
   the topic names, and be fresh (its time within ``window_s`` of this clock; a status no
   older than the worker's last one). A message failing this is *refused*: not applied, not
   acknowledged (an ack would let a forger make the real worker forget a message), recorded
   as a dead letter;
2. its body must pass its schema (:mod:`core.comms.checks`), naming the same worker as the
   topic and the key, episode keys of its own camera runs, evidence by a reference inside the
   evidence store. A message failing this is *rejected*: not applied, acknowledged as
   rejected (so it is not resent forever), recorded as a dead letter with the reason.

Then it applies each message exactly once:

- episode events through :class:`~core.events.sinks.StoreSink`, by episode key (a ``new``,
  ``update`` or ``end`` applied twice changes nothing);
- coverage by message id, and per (session, second), recorded in the same transaction as
  the coverage rows, so a replay under a new id adds nothing;
- status messages as the worker's and cameras' rows; a worker that went ``offline`` (its
  last will) or ``stopped`` has its own sessions ended and the episodes it left open closed.

Episodes and coverage are attached to one session per camera run of that worker, created on
first sight with the worker's host and pid. After applying a message the ingester
acknowledges its id to the worker with a signed ``acks`` message; a message whose write
failed is not acknowledged and comes again.
"""

from __future__ import annotations

import json
import logging
import statistics
import threading
import time
from collections import OrderedDict, defaultdict, deque
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from core.comms import auth, checks
from core.comms import messages as m
from core.comms.bus import BrokerAddress, make_client
from core.events.sinks import EpisodeEvent, StoreSink
from core.storage import Store
from core.storage.fleet import DeadLetter

log = logging.getLogger(__name__)

SUBSCRIPTIONS = [m.topic("+", kind) for kind in ("episodes", "coverage", "status")]
REFUSED_PER_S = 20  # dead letters (and log lines) of refused messages, at most, per second


@dataclass(frozen=True)
class IngestStats:
    """What an ingester did so far."""

    applied: int  # episode and coverage messages written
    duplicates: int  # delivered again and left as they were
    statuses: int
    rejected: int  # signed but failing their schema: acknowledged as rejected
    failed: int  # could not be written (not acknowledged; the worker sends them again)
    latency_p50_ms: float | None  # new episode: emitted at the worker -> committed here
    latency_p95_ms: float | None
    latency_n: int
    refused: int = 0  # not GloveWatch messages, unsigned, forged or of unknown workers
    stale: int = 0  # signed too long ago (not acknowledged: the worker signs it again)


def _percentile(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    if len(xs) == 1:
        return round(xs[0], 1)
    return round(statistics.quantiles(xs, n=100, method="inclusive")[int(q) - 1], 1)


class Keyring:
    """The current key of each worker, derived from the fleet secret and the generation the
    store records (cached for ``ttl_s``, so a revoked key stops working within it)."""

    def __init__(self, store: Store, secret: bytes, ttl_s: float = 5.0):
        self.store, self.secret, self.ttl_s = store, secret, ttl_s
        self._cache: dict[str, tuple[bytes | None, float]] = {}
        self._lock = threading.Lock()

    def key(self, worker: str) -> bytes | None:
        """``worker``'s key, or None for a worker without a (valid) one."""
        with self._lock:
            hit = self._cache.get(worker)
        if hit is not None and time.monotonic() - hit[1] < self.ttl_s:
            return hit[0]
        rec = self.store.fleet.worker_key(worker)
        key = None
        if rec is not None and rec.revoked_at is None:
            key = auth.derive_key(self.secret, worker, rec.generation)
            if auth.fingerprint(key) != rec.fingerprint:
                log.error(
                    "worker %s's key was issued under another fleet secret: its messages are "
                    "refused (use the same GLOVEWATCH_FLEET_SECRET / fleet.secret everywhere)",
                    worker,
                )
                key = None
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()  # a flood of invented names must not grow it forever
            self._cache[worker] = (key, time.monotonic())
        return key


def _excerpt(payload: bytes) -> str:
    return payload[:300].decode("utf-8", "replace")


def _message_id(body: bytes) -> str | None:
    """The id a rejected message says it has (to acknowledge it), if it is a sane one."""
    try:
        d = json.loads(body)
        mid = d.get("id") if isinstance(d, dict) else None
    except (ValueError, UnicodeDecodeError):
        return None
    return mid if isinstance(mid, str) and checks._TOKEN.fullmatch(mid) else None


class Ingester:
    """Applies workers' verified and checked messages to ``store`` (see module docstring).

    ``secret`` is the fleet secret (:func:`core.comms.auth.load_secret`); ``evidence_root``
    the evidence store the episodes' evidence references are resolved in."""

    def __init__(
        self,
        store: Store,
        secret: bytes,
        evidence_root: Path | None = None,
        keep_ids_days: float = 7.0,
        window_s: float = 300.0,
    ):
        self.store = store
        self.sink = StoreSink(store)
        self.keys = Keyring(store, secret)
        self.secret = secret
        self.evidence_root = evidence_root
        self.keep_ids_days, self.window_s = keep_ids_days, window_s
        self._sessions: dict[str, int] = {}
        self._lock = threading.Lock()
        self._acks: dict[str, list[str]] = defaultdict(list)
        self._rejected: dict[str, list[str]] = defaultdict(list)
        self._last_status: dict[str, float] = {}
        self._recent: OrderedDict[str, None] = OrderedDict()  # episode message ids seen
        self._latency: deque[float] = deque(maxlen=100_000)
        self._refused_window = [0.0, 0]  # start, refusals recorded in that second
        self._n = dict(
            applied=0, duplicates=0, statuses=0, rejected=0, failed=0, refused=0, stale=0
        )

    # --- applying one message (no MQTT needed) ---------------------------------------
    def apply(self, topic: str, payload: bytes) -> str:
        """Verify, check and apply one message; returns ``applied``, ``duplicate``,
        ``status``, ``rejected`` (acknowledged as such), ``refused`` or ``stale`` (neither
        applied nor acknowledged). A store error propagates (then not acknowledged)."""
        try:
            worker, kind = m.worker_of(topic)
            if kind == "acks":
                raise ValueError("acks are the ingester's to send")
            env = auth.unwrap(payload)
            key = self.keys.key(worker)
            if key is None:
                raise ValueError(f"worker {worker!r} has no valid key (core fleet add-worker)")
            if not auth.verify(key, topic, env):
                raise ValueError("the signature does not match the worker's key")
        except ValueError as exc:
            return self._refuse(topic, payload, str(exc))
        if not self._fresh(kind, env.ts):
            return self._stale(topic, env.ts)
        return self.apply_verified(worker, kind, env.body, env.ts)

    def _stale(self, topic: str, ts: float) -> str:
        log.info("stale message on %s (signed at %.0f): the worker signs it again", topic, ts)
        self._count("stale")
        return "stale"

    def apply_verified(self, worker: str, kind: str, body: bytes, ts: float | None = None) -> str:
        """Check and apply the body of a message whose envelope, signed at ``ts``, was
        verified as ``worker``'s (:meth:`apply` does that first; the fleet benchmark times
        this part alone)."""
        window = checks.Window(datetime.now())
        try:
            if kind == "status":
                status = checks.status(worker, body, window)
            else:
                msg = checks.message(worker, kind, body)
                checked = (
                    checks.episode(msg, window)
                    if msg.type == "episode"
                    else checks.coverage(msg, window)
                )
        except checks.Refused as exc:
            return self._reject(worker, kind, body, str(exc))
        if kind == "status":
            if not self._newer(status, ts):
                return self._stale(m.topic(worker, kind), ts or 0.0)
            self._status(status)
            self._count("statuses")
            return "status"
        if isinstance(checked, EpisodeEvent):
            outcome = self._episode(msg, checked)
        else:
            station, rows = checked
            sid = self._session(msg.run)
            fresh = self.store.fleet.coverage_once(msg.id, station, sid, rows)
            outcome = "applied" if fresh else "duplicate"
        self._count(outcome + ("s" if outcome == "duplicate" else ""))
        with self._lock:
            self._acks[worker].append(msg.id)
        return outcome

    def _fresh(self, kind: str, ts: float) -> bool:
        """Signed within the window (not in the future for a status: a last will was signed
        when the worker connected, so its age says nothing; see :meth:`_newer`)."""
        now = time.time()
        return ts <= now + self.window_s and (kind == "status" or now - ts <= self.window_s)

    def _newer(self, status: m.Status, ts: float | None) -> bool:
        """A heartbeat must be newer than the worker's last one (a replayed one changes
        nothing); an old last will replayed can only end sessions of a process that already
        ended, so a will is always taken."""
        if ts is None or status.worker.status != "online":
            return True
        with self._lock:
            if ts <= self._last_status.get(status.worker.name, 0.0):
                return False
            self._last_status[status.worker.name] = ts
        return True

    def _refuse(self, topic: str, payload: bytes, reason: str) -> str:
        self._count("refused")
        now = time.monotonic()
        with self._lock:  # a flood of forgeries must not become a flood of writes
            if now - self._refused_window[0] >= 1.0:
                self._refused_window = [now, 0]
            self._refused_window[1] += 1
            quiet = self._refused_window[1] > REFUSED_PER_S
        if quiet:
            return "refused"  # counted in the stats only
        log.warning("refused a message on %s: %s", topic[:200], reason)
        worker = topic.split("/")[1][:64] if topic.count("/") == 2 else None
        self._dead(DeadLetter(topic[:200], f"refused: {reason}", worker, None, _excerpt(payload)))
        return "refused"

    def _reject(self, worker: str, kind: str, body: bytes, reason: str) -> str:
        log.warning("rejected a message of worker %s (%s): %s", worker, kind, reason)
        self._count("rejected")
        mid = _message_id(body)
        self._dead(DeadLetter(m.topic(worker, kind), reason, worker, mid, _excerpt(body)))
        if mid is not None and kind != "status":
            with self._lock:
                self._rejected[worker].append(mid)
        return "rejected"

    def _dead(self, letter: DeadLetter) -> None:
        try:
            self.store.fleet.dead_letter(letter)
        except Exception:  # the store being down must not stop ingesting what is good
            log.exception("could not record a dead letter")

    def _count(self, what: str) -> None:
        with self._lock:
            self._n[what] += 1

    def _episode(self, msg: m.Message, event: EpisodeEvent) -> str:
        with self._lock:
            seen = msg.id in self._recent
        row = replace(
            event.row,
            session_id=self._session(msg.run),
            evidence_path=self._evidence(event.row.evidence_path),
            crop_path=self._evidence(event.row.crop_path),
        )
        self.sink.episode(EpisodeEvent(event.kind, event.key, row))
        if seen:
            return "duplicate"
        with self._lock:
            self._recent[msg.id] = None
            while len(self._recent) > 50_000:
                self._recent.popitem(last=False)
            if event.kind == "new":
                self._latency.append((time.time() - msg.sent_at) * 1000)
        return "applied"

    def _evidence(self, ref: str | None) -> str | None:
        """Where a (checked) evidence reference lies in this ingester's evidence store."""
        if ref is None or self.evidence_root is None:
            return None
        return str(self.evidence_root / ref)

    def _session(self, run: m.CameraRun) -> int:
        with self._lock:
            sid = self._sessions.get(run.key_prefix)
        if sid is None:
            sid = self.store.fleet.run_session(
                run.run, run.session, run.host, run.pid, worker=run.worker
            )
            with self._lock:
                self._sessions[run.key_prefix] = sid
        return sid

    def _status(self, status: m.Status) -> None:
        w = status.worker
        self.store.fleet.report(w, status.cameras)
        if not w.host:
            return
        if w.status == "online":
            self.store.fleet.beat_sessions(w.host, status.pid, worker=w.name)
            return
        ended = self.store.fleet.end_sessions(
            w.host, status.pid, "interrupted" if w.status == "offline" else "finished", w.name
        )
        if ended:
            closed = self.store.events.close_orphans(ended)
            log.warning(
                "worker %s is %s: %d session(s) ended, %d open episode(s) closed at "
                "their last sighting",
                w.name,
                w.status,
                len(ended),
                closed,
            )

    def take_acks(self) -> dict[str, list[str]]:
        """Message ids applied since the last call, per worker (to acknowledge)."""
        with self._lock:
            acks, self._acks = dict(self._acks), defaultdict(list)
        return acks

    def take_rejected(self) -> dict[str, list[str]]:
        """Message ids rejected since the last call, per worker (to acknowledge as such)."""
        with self._lock:
            out, self._rejected = dict(self._rejected), defaultdict(list)
        return out

    def stats(self) -> IngestStats:
        with self._lock:
            lat = sorted(self._latency)
            n = dict(self._n)
        return IngestStats(
            n["applied"],
            n["duplicates"],
            n["statuses"],
            n["rejected"],
            n["failed"],
            _percentile(lat, 50),
            _percentile(lat, 95),
            len(lat),
            n["refused"],
            n["stale"],
        )

    def prune(self) -> int:
        """Forget applied message ids older than ``keep_ids_days``."""
        before = (datetime.now() - timedelta(days=self.keep_ids_days)).strftime("%Y-%m-%d %H:%M:%S")
        return self.store.fleet.prune_ingested(before)

    # --- the MQTT side -----------------------------------------------------------------
    def run(
        self,
        url: str,
        stop: threading.Event,
        ready: threading.Event | None = None,
        client_id: str = "glovewatch-ingester",
        ack_every_s: float = 0.2,
    ) -> IngestStats:
        """Subscribe and apply messages until ``stop`` is set; reconnects by itself."""
        address = self._address(url)
        client = make_client(address, client_id, persistent=True)
        connected = threading.Event()

        def on_connect(c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
            if reason.is_failure:
                log.warning("the broker refused the ingester: %s", reason)
                return
            c.subscribe([(t, 1) for t in SUBSCRIPTIONS])
            connected.set()
            log.info("ingester connected to %s:%s", address.host, address.port)

        def on_subscribe(_c: Any, _u: Any, _mid: Any, _codes: Any, _p: Any) -> None:
            if ready is not None:
                ready.set()

        def on_disconnect(_c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
            connected.clear()
            if not stop.is_set():
                log.warning("ingester lost the broker (%s); reconnecting", reason)

        def on_message(_c: Any, _u: Any, msg: Any) -> None:
            try:
                self.apply(msg.topic, msg.payload)
            except Exception:  # a store error: not acknowledged, so the worker resends it
                self._count("failed")
                log.exception("message on %s could not be written", msg.topic)

        client.on_connect, client.on_subscribe = on_connect, on_subscribe
        client.on_disconnect, client.on_message = on_disconnect, on_message
        client.connect_async(address.host, address.port, keepalive=10)
        client.loop_start()
        last_prune = time.monotonic()
        try:
            while not stop.wait(ack_every_s):
                self._send_acks(client, connected)
                if time.monotonic() - last_prune > 3600:
                    last_prune = time.monotonic()
                    try:
                        self.prune()
                    except Exception:
                        log.exception("pruning applied message ids failed")
            self._send_acks(client, connected)
            time.sleep(0.2)
        finally:
            client.disconnect()
            client.loop_stop()
        return self.stats()

    def _address(self, url: str) -> BrokerAddress:
        """The broker, logged in to as the ingester's account (the one core fleet
        mosquitto-config writes) unless the URL names a user."""
        address = BrokerAddress.parse(url)
        if address.username is not None:
            return address
        return replace(
            address, username=auth.INGESTER_USER, password=auth.ingester_password(self.secret)
        )

    def _send_acks(self, client: Any, connected: threading.Event) -> None:
        """Signed acks, with the worker's key (only the ingester and the worker hold it)."""
        if not connected.is_set():
            return  # kept: acknowledged when the broker is back (or the worker resends)
        applied, rejected = self.take_acks(), self.take_rejected()
        for worker in set(applied) | set(rejected):
            key = self.keys.key(worker)
            if key is None:
                continue  # revoked meanwhile: nothing to tell it
            ids, bad = applied.get(worker, []), rejected.get(worker, [])
            topic = m.topic(worker, "acks")
            for i in range(0, max(len(ids), len(bad)), 500):
                body = m.encode_acks(worker, ids[i : i + 500], bad[i : i + 500])
                client.publish(topic, auth.seal(key, topic, body, time.time()), qos=1)
