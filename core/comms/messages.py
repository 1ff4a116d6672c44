"""What camera workers and the ingester say to each other over MQTT: topics and JSON bodies.

Topics, under ``glovewatch/<worker>/``:

- ``episodes``: one episode event (``new``, ``update`` or ``end``) with its episode key;
- ``coverage``: the coverage seconds of one camera that one recorder flush handed over;
- ``status``: the worker's heartbeat with its cameras (retained; the last will says
  ``offline``);
- ``acks``: the ids of episode and coverage messages the ingester has applied (or rejected
  as malformed), so a worker can forget them (and resend those nobody acknowledged).

Each of them travels signed (:mod:`core.comms.auth`); :mod:`core.comms.checks` holds the
schema the ingester checks bodies against.

Every episode and coverage message has a unique ``id`` and says which camera run it comes
from (:class:`CameraRun`: worker, camera, a token unique per start, the worker's host and
pid, and what the session records), so the ingester can apply it exactly once and attach it
to the right session.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from core.errors import ConfigError
from core.events.sinks import EpisodeEvent
from core.storage.coverage import CoverageRow
from core.storage.fleet import CameraRow, WorkerRow
from core.storage.sessions import SessionInfo

PREFIX = "glovewatch"
KINDS = ("episodes", "coverage", "status", "acks")
_BAD_NAME_CHARS = set("/+#\x00")


def check_worker_name(name: str) -> str:
    """A worker name usable as a topic level (no ``/``, ``+``, ``#``), 1-64 characters."""
    name = name.strip()
    if not name or len(name) > 64 or _BAD_NAME_CHARS & set(name) or name.startswith("$"):
        raise ConfigError(
            f"Worker name {name!r} cannot be used: give 1-64 characters without "
            "'/', '+', '#' (GLOVEWATCH_WORKER_NAME or 'worker:' in the config)."
        )
    return name


def topic(worker: str, kind: str) -> str:
    """The topic of one kind of message of one worker (``+`` for every worker)."""
    assert kind in KINDS
    return f"{PREFIX}/{worker}/{kind}"


def worker_of(topic_name: str) -> tuple[str, str]:
    """``(worker, kind)`` of a topic; raises ValueError for a topic that is not ours."""
    parts = topic_name.split("/")
    if len(parts) != 3 or parts[0] != PREFIX or parts[2] not in KINDS:
        raise ValueError(f"not a GloveWatch topic: {topic_name}")
    return parts[1], parts[2]


@dataclass(frozen=True)
class CameraRun:
    """One camera of one worker process, from its start to its end."""

    worker: str
    camera: str
    run: str  # unique per camera and worker start
    host: str
    pid: int
    session: SessionInfo

    @property
    def key_prefix(self) -> str:
        """What its episode keys start with (unique across workers and restarts)."""
        return f"{self.worker}/{self.camera}/{self.run}"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Message:
    """An episode or coverage message (see module docstring)."""

    id: str
    type: str  # episode | coverage
    run: CameraRun
    sent_at: float  # time.time() at the worker when it was emitted
    body: dict[str, Any] = field(default_factory=dict)

    def encode(self) -> bytes:
        return json.dumps(
            {
                "id": self.id,
                "type": self.type,
                "run": self.run.as_dict(),
                "sent_at": self.sent_at,
                "body": self.body,
            },
            separators=(",", ":"),
            default=str,
        ).encode()

    @property
    def topic(self) -> str:
        return topic(self.run.worker, "episodes" if self.type == "episode" else "coverage")


def new_id() -> str:
    return uuid.uuid4().hex


def episode_message(run: CameraRun, event: EpisodeEvent, sent_at: float) -> Message:
    return Message(
        new_id(),
        "episode",
        run,
        sent_at,
        {"kind": event.kind, "key": event.key, "row": asdict(event.row)},
    )


def coverage_message(
    run: CameraRun, station: str, rows: list[CoverageRow], sent_at: float
) -> Message:
    return Message(
        new_id(),
        "coverage",
        run,
        sent_at,
        {
            "station": station,
            "rows": [
                [r.ts, r.watched_s, r.hand_s, r.hands, r.compliant_s, r.violating_s] for r in rows
            ],
        },
    )


@dataclass(frozen=True)
class Status:
    """A worker's heartbeat: itself and its cameras, with its process (host, pid)."""

    worker: WorkerRow
    cameras: tuple[CameraRow, ...]
    pid: int

    def encode(self) -> bytes:
        return json.dumps(
            {
                "worker": asdict(self.worker),
                "cameras": [asdict(c) for c in self.cameras],
                "pid": self.pid,
            },
            separators=(",", ":"),
            default=str,
        ).encode()


def encode_acks(worker: str, ids: list[str], rejected: list[str] | None = None) -> bytes:
    """What the ingester tells ``worker``: the ids it applied and those it rejected."""
    return json.dumps({"worker": worker, "ids": ids, "rejected": rejected or []}).encode()


def decode_acks(payload: bytes, worker: str) -> tuple[list[str], list[str]]:
    """``(applied, rejected)`` ids of an ack to ``worker``; ValueError for anything else."""
    try:
        d = json.loads(payload)
        if d["worker"] != worker:
            raise ValueError(f"acks for {d['worker']!r}")
        ids, bad = d["ids"], d.get("rejected", [])
        if not all(isinstance(i, str) for i in [*ids, *bad]):
            raise ValueError("ids must be text")
        return list(ids), list(bad)
    except (KeyError, TypeError) as exc:
        raise ValueError(f"malformed acks: {exc}") from exc
