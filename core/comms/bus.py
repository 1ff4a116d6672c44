"""The event bus of camera workers: MQTT (paho-mqtt 2, QoS 1) from workers to one ingester.

A worker's :class:`BusPublisher` is its MQTT connection: episode and coverage messages go
through its :class:`~core.comms.outbox.Outbox` (journaled, resent until the ingester
acknowledges them, so neither a broker restart nor a worker restart loses one) and its
heartbeat is a retained ``status`` message; the MQTT last will marks the worker ``offline``
when its connection dies. :class:`MqttSink` is the :class:`~core.events.sinks.Sink` a camera's
episode recorder writes to, and :class:`MqttOutlet` is what a worker publishes through.

Every message a worker publishes is signed with its key (:mod:`core.comms.auth`) when it is
published, so a resend after a long outage carries a fresh time; acks are verified before
the outbox forgets anything. Evidence travels as a reference inside the worker's evidence
store, never as a path.

``GLOVEWATCH_MQTT_URL`` names the broker: ``mqtt://[user:password@]host[:port]`` (1883 by
default) or ``mqtts://`` for TLS (8883; ``?ca=/path/ca.pem`` for a plant's own CA). Without a
user in the URL a worker logs in as itself with the password its key gives (the accounts
``core fleet mosquitto-config`` writes).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from core.comms import auth
from core.comms import messages as m
from core.comms.outbox import Outbox, OutboxStats
from core.errors import ConfigError
from core.events.evidence import EvidenceStore
from core.events.sinks import EpisodeEvent, Sink
from core.storage.coverage import CoverageRow
from core.storage.fleet import CameraRow, WorkerRow
from core.text import redact_url

log = logging.getLogger(__name__)

MAX_BODY = auth.MAX_PAYLOAD // 2  # escaped inside its envelope, a body can grow this much


@dataclass(frozen=True)
class BrokerAddress:
    """Where the broker is, from ``mqtt://`` / ``mqtts://`` URLs."""

    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = None
    ca: str | None = None  # a CA file for a plant's own certificates (``?ca=/path``)

    @classmethod
    def parse(cls, url: str) -> BrokerAddress:
        parts = urlsplit(url.strip())
        if parts.scheme not in ("mqtt", "mqtts", "tcp") or not parts.hostname:
            raise ConfigError(
                f"{redact_url(url)} is not a broker address: use "
                "mqtt://host:1883 (or mqtts:// for TLS)."
            )
        tls = parts.scheme == "mqtts"
        try:
            port = parts.port or (8883 if tls else 1883)
        except ValueError:
            raise ConfigError(f"{redact_url(url)}: the port is not a number.") from None
        ca = parse_qs(parts.query).get("ca", [None])[0]
        return cls(
            parts.hostname,
            port,
            tls,
            unquote(parts.username) if parts.username else None,
            unquote(parts.password) if parts.password else None,
            ca,
        )


def make_client(address: BrokerAddress, client_id: str, persistent: bool) -> Any:
    """A paho client (MQTT 3.1.1) for ``address``; ``persistent`` keeps the session (its
    subscriptions and the QoS 1 messages queued for it) across disconnections."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        clean_session=not persistent,
        protocol=mqtt.MQTTv311,
    )
    if address.username:
        client.username_pw_set(address.username, address.password)
    if address.tls:
        client.tls_set(ca_certs=address.ca)
    client.reconnect_delay_set(min_delay=1, max_delay=10)
    client.max_queued_messages_set(0)  # unbounded: the outbox bounds what is waiting
    client.max_inflight_messages_set(100)
    return client


class BusPublisher:
    """A worker's connection to the broker: outbox, sender thread, acks and heartbeats.

    Episode and coverage messages are published from a sender thread while connected:
    never-sent ones first, then, every ``resend_after_s``, those still unacknowledged.
    """

    def __init__(
        self,
        url: str,
        credential: auth.Credential,
        outbox: Outbox,
        pid: int,
        resend_after_s: float = 30.0,
        keepalive_s: int = 10,
    ):
        self.address = BrokerAddress.parse(url)
        self.worker = worker = m.check_worker_name(credential.worker)
        self.key = credential.key
        if self.address.username is None:
            self.address = replace(self.address, username=worker, password=credential.mqtt_password)
        self.outbox, self.pid = outbox, pid
        self.resend_after_s, self.keepalive_s = resend_after_s, keepalive_s
        self._cond = threading.Condition()
        self._connected = False
        self._stop = False
        self._status: bytes | None = None
        self._status_sent = True
        self.connects = 0
        self.client = make_client(self.address, f"glovewatch-worker-{worker}", persistent=True)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self._thread = threading.Thread(
            target=self._send_loop, daemon=True, name=f"gw-bus-{worker}"
        )

    def will(self, status: m.Status) -> None:
        """What the broker says for this worker if its connection dies (retained)."""
        topic = m.topic(self.worker, "status")
        self.client.will_set(topic, self._seal(topic, status.encode()), qos=1, retain=True)

    def _seal(self, topic: str, body: bytes) -> bytes:
        return auth.seal(self.key, topic, body, time.time())

    def start(self) -> BusPublisher:
        a = self.address
        self.client.connect_async(a.host, a.port, keepalive=self.keepalive_s)
        self.client.loop_start()
        self._thread.start()
        return self

    @property
    def connected(self) -> bool:
        with self._cond:
            return self._connected

    def wait_connected(self, timeout_s: float) -> bool:
        end = time.monotonic() + timeout_s
        with self._cond:
            while not self._connected and time.monotonic() < end:
                self._cond.wait(min(0.1, max(0.0, end - time.monotonic())))
            return self._connected

    # --- paho callbacks (its network thread) -----------------------------------------
    def _on_connect(
        self, client: Any, _userdata: Any, _flags: Any, reason: Any, _props: Any
    ) -> None:
        if reason.is_failure:
            log.warning(
                "broker %s:%s refused worker %s: %s",
                self.address.host,
                self.address.port,
                self.worker,
                reason,
            )
            return
        client.subscribe(m.topic(self.worker, "acks"), qos=1)
        self.outbox.unsend()  # what was in flight may be gone with the broker: send again
        with self._cond:
            self._connected = True
            self._status_sent = False
            self.connects += 1
            self._cond.notify_all()
        log.info(
            "worker %s connected to the broker %s:%s",
            self.worker,
            self.address.host,
            self.address.port,
        )

    def _on_disconnect(
        self, _client: Any, _userdata: Any, _flags: Any, reason: Any, _props: Any
    ) -> None:
        with self._cond:
            was, self._connected = self._connected, False
        if was and not self._stop:
            log.warning(
                "worker %s lost the broker (%s); buffering until it is back", self.worker, reason
            )

    def _on_message(self, _client: Any, _userdata: Any, msg: Any) -> None:
        # Only the ingester holds this worker's key: an ack it did not sign is ignored, so a
        # forged ack cannot make the worker drop a message. An old ack replayed names ids
        # the ingester already took, so its age does not matter.
        topic = m.topic(self.worker, "acks")
        try:
            env = auth.unwrap(msg.payload)
            if msg.topic != topic or not auth.verify(self.key, topic, env):
                raise ValueError("not signed by the ingester")
            applied, rejected = m.decode_acks(env.body, self.worker)
        except ValueError as exc:
            log.warning("ignored an ack on %s: %s", msg.topic, exc)
            return
        self.outbox.ack(applied)
        if rejected:
            log.error(
                "the ingester rejected %d message(s) of worker %s as malformed (see the "
                "dead letters on the Cameras page); they are not sent again",
                self.outbox.ack(rejected),
                self.worker,
            )
        with self._cond:
            self._cond.notify_all()

    # --- sending -----------------------------------------------------------------------
    def send(self, message: m.Message) -> None:
        """Emit an episode or coverage message (kept in the outbox until acknowledged); one
        too large for the ingester to read is logged and dropped, never resent forever."""
        body = message.encode()
        if len(body) > MAX_BODY:
            log.error(
                "worker %s: a %s message of %d bytes is over the %d the ingester reads; dropped",
                self.worker,
                message.type,
                len(body),
                MAX_BODY,
            )
            return
        self.outbox.add(message.id, message.topic, body)
        with self._cond:
            self._cond.notify_all()

    def status(self, status: m.Status) -> None:
        """Publish the heartbeat (retained; the latest one is sent when connected)."""
        with self._cond:
            self._status, self._status_sent = status.encode(), False
            self._cond.notify_all()

    def _send_loop(self) -> None:
        while True:
            with self._cond:
                if self._stop:
                    return
                self._cond.wait(0.5)
                if not self._connected:
                    continue
                status = None if self._status_sent else self._status
                self._status_sent = True
            if status is not None:
                topic = m.topic(self.worker, "status")
                self.client.publish(topic, self._seal(topic, status), qos=1, retain=True)
            for p in self.outbox.due(time.monotonic(), self.resend_after_s, 500):
                if not self.connected:
                    break
                info = self.client.publish(p.topic, self._seal(p.topic, p.payload), qos=1)
                if info.rc == 0:
                    self.outbox.sent(p.id, time.monotonic())

    def flush(self, timeout_s: float) -> bool:
        """Wait until every message is acknowledged (or ``timeout_s``); True when none is
        left."""
        end = time.monotonic() + timeout_s
        while len(self.outbox) and time.monotonic() < end:
            with self._cond:
                self._cond.notify_all()
                self._cond.wait(0.1)
        return not len(self.outbox)

    def close(self, final: m.Status | None = None, timeout_s: float = 10.0) -> bool:
        """Send what is waiting (up to ``timeout_s``), the final status, and disconnect.
        Returns True when nothing was left unacknowledged."""
        done = self.flush(timeout_s)
        with self._cond:
            self._stop = True  # no heartbeat may follow the final status
            self._cond.notify_all()
        self._thread.join(5)
        if final is not None and self.connected:
            topic = m.topic(self.worker, "status")
            info = self.client.publish(topic, self._seal(topic, final.encode()), qos=1, retain=True)
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(timeout=min(5.0, timeout_s))
        self.client.disconnect()  # a clean disconnect: the broker does not send the will
        self.client.loop_stop()
        self.outbox.close()
        if not done:
            log.warning(
                "worker %s stopped with %d message(s) unacknowledged; they stay in "
                "its outbox and are sent at its next start",
                self.worker,
                len(self.outbox),
            )
        return done

    def stats(self) -> OutboxStats:
        return self.outbox.stats()


class MqttSink:
    """The :class:`~core.events.sinks.Sink` of one camera run: publishes its episode events
    (evidence as references inside ``evidence``, the worker's evidence store) and coverage."""

    def __init__(
        self, publisher: BusPublisher, run: m.CameraRun, evidence: EvidenceStore | None = None
    ):
        self.publisher, self.run, self.evidence = publisher, run, evidence

    def episode(self, event: EpisodeEvent) -> None:
        row = event.row
        refs = (
            (self.evidence.ref(row.evidence_path), self.evidence.ref(row.crop_path))
            if self.evidence is not None
            else (None, None)
        )
        row = replace(row, evidence_path=refs[0], crop_path=refs[1], session_id=None)
        event = EpisodeEvent(event.kind, event.key, row)
        self.publisher.send(m.episode_message(self.run, event, time.time()))

    def coverage(self, station: str, session_id: int | None, rows: Sequence[CoverageRow]) -> None:
        if rows:
            self.publisher.send(m.coverage_message(self.run, station, list(rows), time.time()))


class MqttOutlet:
    """Where a worker sends episodes, coverage and heartbeats when a broker is configured."""

    remote = True  # evidence stays on the worker's disk (see Worker.purge_evidence)

    def __init__(
        self,
        url: str,
        credential: auth.Credential,
        pid: int,
        outbox_path: Path | None,
        resend_after_s: float = 30.0,
        evidence_root: Path | None = None,
    ):
        self.pid = pid
        self.evidence = EvidenceStore(evidence_root) if evidence_root is not None else None
        self.publisher = BusPublisher(url, credential, Outbox(outbox_path), pid, resend_after_s)

    def start(self, offline: WorkerRow, cameras: Sequence[CameraRow]) -> None:
        """Connect (in the background), with ``offline`` as the last will."""
        self.publisher.will(m.Status(offline, tuple(cameras), self.pid))
        self.publisher.start()

    def open_camera(self, run: m.CameraRun) -> tuple[Sink, int | None]:
        """The sink of a camera run (the ingester creates its session)."""
        return MqttSink(self.publisher, run, self.evidence), None

    def close_camera(self, run: m.CameraRun, session_id: int | None, status: str) -> None:
        """Nothing to do: the ingester ends the sessions when the worker says it stopped."""

    def heartbeat(self, worker: WorkerRow, cameras: Sequence[CameraRow]) -> None:
        self.publisher.status(m.Status(worker, tuple(cameras), self.pid))

    def details(self) -> dict[str, Any]:
        s = self.publisher.stats()
        return {
            "transport": "mqtt",
            "broker": f"{self.publisher.address.host}:{self.publisher.address.port}",
            "connected": self.publisher.connected,
            "outbox_pending": s.pending,
            "outbox_dropped": s.dropped,
        }

    def close(
        self, worker: WorkerRow, cameras: Sequence[CameraRow], timeout_s: float = 10.0
    ) -> bool:
        """Send what waits (up to ``timeout_s``), then the final status, and disconnect."""
        self.publisher.flush(timeout_s)
        final = replace(worker, details={**worker.details, **self.details()})
        return self.publisher.close(m.Status(final, tuple(cameras), self.pid), 1.0)
