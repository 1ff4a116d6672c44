"""A worker's outbox: every message it emits, kept until the ingester acknowledges it.

MQTT's QoS 1 only promises that the *broker* got a message; a broker killed before it passed
the message on loses it. So a worker keeps each episode and coverage message until the
ingester says it applied it (an ``acks`` message) and sends again what stays unacknowledged
(the ingester applies each message once, so a second copy changes nothing).

The outbox is a journal file (JSON lines): a line per message when it is emitted, a line per
acknowledgement. A worker killed mid-run and started again reads it back and sends what was
never acknowledged. The journal keeps the history of what the worker emitted until it grows
past ``max_bytes``; then it is rewritten with the unacknowledged messages only. Without a
path the outbox lives in memory only. At most ``max_pending`` messages wait: beyond that the
oldest is dropped, counted and logged (the broker has been away for a long time).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass
class Pending:
    """A message waiting for the ingester's acknowledgement."""

    id: str
    topic: str
    payload: bytes
    sent_at: float | None = None  # time.monotonic() of the latest publish; None: never sent


@dataclass(frozen=True)
class OutboxStats:
    pending: int
    emitted: int  # messages added since this process started
    acked: int
    dropped: int  # given up because the outbox was full


class Outbox:
    """Unacknowledged messages in emission order, journaled to ``path`` (thread-safe)."""

    def __init__(
        self, path: Path | None = None, max_pending: int = 100_000, max_bytes: int = 64 << 20
    ):
        self.path, self.max_pending, self.max_bytes = path, max_pending, max_bytes
        self._lock = threading.Lock()
        self._pending: OrderedDict[str, Pending] = OrderedDict()
        self._emitted = self._acked = self._dropped = 0
        self._fd: int | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._load()
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)

    def _load(self) -> None:
        assert self.path is not None
        if not self.path.exists():
            return
        with open(self.path, "rb") as fh:
            for line in fh:
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue  # a line cut short by a crash
                if "m" in rec:
                    self._pending[rec["m"]] = Pending(rec["m"], rec["t"], rec["p"].encode())
                else:
                    for mid in rec.get("a", ()):
                        self._pending.pop(mid, None)
        if self._pending:
            log.warning(
                "outbox %s: %d message(s) of an earlier run were never acknowledged; "
                "sending them again",
                self.path.name,
                len(self._pending),
            )
        if self.path.stat().st_size > self.max_bytes:
            self._rewrite()

    def _write(self, record: dict) -> None:
        if self._fd is not None:
            # one write() per line with O_APPEND: a killed process leaves whole lines
            os.write(self._fd, (json.dumps(record, separators=(",", ":")) + "\n").encode())

    def _rewrite(self) -> None:
        """Replace the journal with the unacknowledged messages (atomically)."""
        assert self.path is not None
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w") as fh:
            for p in self._pending.values():
                fh.write(
                    json.dumps(
                        {"m": p.id, "t": p.topic, "p": p.payload.decode()}, separators=(",", ":")
                    )
                    + "\n"
                )
        tmp.replace(self.path)
        if self._fd is not None:
            os.close(self._fd)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)

    def add(self, message_id: str, topic: str, payload: bytes) -> None:
        """Keep a message until it is acknowledged (written to the journal first)."""
        with self._lock:
            self._write({"m": message_id, "t": topic, "p": payload.decode()})
            self._pending[message_id] = Pending(message_id, topic, payload)
            self._emitted += 1
            while len(self._pending) > self.max_pending:
                gone = self._pending.popitem(last=False)[1]
                self._dropped += 1
                log.error(
                    "outbox full (%d messages): message %s on %s dropped unsent",
                    self.max_pending,
                    gone.id,
                    gone.topic,
                )
            if (
                self._fd is not None
                and self.path is not None
                and self._emitted % 1000 == 0
                and self.path.stat().st_size > self.max_bytes
            ):
                self._rewrite()

    def ack(self, ids: Iterable[str]) -> int:
        """Forget acknowledged messages; returns how many were waiting."""
        with self._lock:
            done = [i for i in ids if self._pending.pop(i, None) is not None]
            if done:
                self._write({"a": done})
                self._acked += len(done)
            return len(done)

    def due(self, now: float, resend_after_s: float, limit: int) -> list[Pending]:
        """Messages to publish now: never sent, or sent ``resend_after_s`` ago and still
        unacknowledged (oldest first, at most ``limit``)."""
        with self._lock:
            out = []
            for p in self._pending.values():
                if p.sent_at is None or now - p.sent_at >= resend_after_s:
                    out.append(p)
                    if len(out) >= limit:
                        break
            return out

    def sent(self, message_id: str, at: float) -> None:
        with self._lock:
            p = self._pending.get(message_id)
            if p is not None:
                p.sent_at = at

    def unsend(self) -> None:
        """Treat every waiting message as never sent (after a reconnection)."""
        with self._lock:
            for p in self._pending.values():
                p.sent_at = None

    def stats(self) -> OutboxStats:
        with self._lock:
            return OutboxStats(len(self._pending), self._emitted, self._acked, self._dropped)

    def __len__(self) -> int:
        with self._lock:
            return len(self._pending)

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
            if (
                self.path is not None
                and not self._pending
                and self.path.exists()
                and self.path.stat().st_size > self.max_bytes
            ):
                self._rewrite()


def read_journal(path: Path) -> tuple[list[dict], set[str]]:
    """Every message a journal holds (decoded JSON bodies, in order) and the acknowledged
    ids: what a worker emitted (the fault test compares it with the store)."""
    messages, acked = [], set()
    with open(path, "rb") as fh:
        for line in fh:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if "m" in rec:
                messages.append(json.loads(rec["p"]))
            else:
                acked.update(rec.get("a", ()))
    return messages, acked
