"""Who may speak on the bus: worker keys, signed messages and the fleet secret.

Every message on the bus is an *envelope*: the message's JSON bytes exactly as the sender
wrote them (``body``), the sender's clock (``ts``) and ``sig``, an HMAC-SHA256 over the
canonical bytes ``glovewatch/1 \\n topic \\n ts \\n body``. Signing the topic binds the
message to one worker and one kind: a worker's key signs only its own topics, so a message on
``glovewatch/w2/...`` signed with w1's key fails. The ingester signs acks the same way with
the worker's key, so only the ingester can make a worker forget a message.

Keys are not stored anywhere. Each worker's key is derived from the *fleet secret* (32 random
bytes in ``<data>/fleet.secret``, mode 0600, or ``GLOVEWATCH_FLEET_SECRET``), the worker's
name and a generation number; the store keeps only the generation and a fingerprint. HMAC
needs the verifier to hold the key, so a one-way hash of it could not verify anything; deriving
it keeps the database (shared with the web app, copied into backups) free of secrets, and
issuing a new generation (``core fleet add-worker NAME`` again) retires the old key at once.
The same key gives the worker's MQTT password (one-way: the broker's password file never sees
the signing key).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from core.errors import ConfigError

VERSION = 1
SECRET_FILE = "fleet.secret"  # noqa: S105 (a file name, not a secret)
INGESTER_USER = "glovewatch-ingester"
MAX_PAYLOAD = 1 << 20  # bytes: an envelope larger than this is refused unread


@dataclass(frozen=True)
class Credential:
    """A worker's identity: its name and its 32-byte signing key."""

    worker: str
    key: bytes

    def text(self) -> str:
        """How it is printed once and handed to the worker (``NAME:hex``)."""
        return f"{self.worker}:{self.key.hex()}"

    @classmethod
    def parse(cls, text: str) -> Credential:
        """The credential printed by ``core fleet add-worker``; ConfigError otherwise."""
        name, _, hexkey = text.strip().rpartition(":")
        try:
            key = bytes.fromhex(hexkey)
        except ValueError:
            key = b""
        if not name or len(key) != 32:
            raise ConfigError(
                "The worker key is not one 'core fleet add-worker NAME' printed "
                "(NAME:64 hex digits)."
            )
        return cls(name, key)

    @property
    def mqtt_password(self) -> str:
        return mqtt_password(self.key)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.key)


def fingerprint(key: bytes) -> str:
    """A short public name of a key (what the store keeps)."""
    return hashlib.sha256(b"glovewatch-fingerprint\x00" + key).hexdigest()[:24]


def mqtt_password(key: bytes) -> str:
    """The broker password that goes with a key."""
    return hmac.new(key, b"glovewatch-mqtt-password", hashlib.sha256).hexdigest()[:40]


def derive_key(secret: bytes, worker: str, generation: int) -> bytes:
    """Worker ``worker``'s key of ``generation`` under the fleet secret."""
    label = f"glovewatch-worker\x00{worker}\x00{generation}".encode()
    return hmac.new(secret, label, hashlib.sha256).digest()


def ingester_password(secret: bytes) -> str:
    """The ingester's broker password (derived from the fleet secret)."""
    return hmac.new(secret, b"glovewatch-ingester-mqtt", hashlib.sha256).hexdigest()[:40]


def load_secret(home: Path, create: bool = False) -> bytes:
    """The fleet secret: ``GLOVEWATCH_FLEET_SECRET`` (hex), else ``home/fleet.secret``
    (created, mode 0600, when ``create``). ConfigError when there is none."""
    env = os.environ.get("GLOVEWATCH_FLEET_SECRET", "").strip()
    if env:
        try:
            raw = bytes.fromhex(env)
        except ValueError:
            raw = b""
        if len(raw) < 16:
            raise ConfigError("GLOVEWATCH_FLEET_SECRET must be at least 32 hex digits.")
        return raw
    path = home / SECRET_FILE
    if not path.exists():
        if not create:
            raise ConfigError(
                f"No fleet secret in {path}: issue worker keys first with "
                "'python -m core fleet add-worker NAME' on this machine."
            )
        home.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32) + "\n")
    try:
        return bytes.fromhex(path.read_text().strip())
    except ValueError:
        raise ConfigError(f"{path} does not hold a fleet secret (64 hex digits).") from None


def _canonical(topic: str, ts: float, body: bytes) -> bytes:
    return f"glovewatch/{VERSION}\n{topic}\n{ts:.3f}\n".encode() + body


@dataclass(frozen=True)
class Envelope:
    """A signed message as it travels (see module docstring)."""

    ts: float
    body: bytes
    sig: str


def seal(key: bytes, topic: str, body: bytes, ts: float) -> bytes:
    """``body`` signed for ``topic`` at time ``ts`` (seconds since the epoch)."""
    ts = round(ts, 3)
    sig = hmac.new(key, _canonical(topic, ts, body), hashlib.sha256).hexdigest()
    return json.dumps(
        {"v": VERSION, "ts": ts, "body": body.decode(), "sig": sig}, separators=(",", ":")
    ).encode()


def unwrap(payload: bytes) -> Envelope:
    """The envelope in ``payload`` (not yet verified); ValueError when it is not one."""
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"message of {len(payload)} bytes is over the {MAX_PAYLOAD} limit")
    try:
        d = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError("not JSON") from exc
    if not isinstance(d, dict) or d.get("v") != VERSION:
        raise ValueError("unsigned (not a version 1 envelope)")
    ts, body, sig = d.get("ts"), d.get("body"), d.get("sig")
    if (
        not isinstance(ts, int | float)
        or isinstance(ts, bool)
        or not math.isfinite(ts)
        or not isinstance(body, str)
        or not isinstance(sig, str)
        or len(sig) != 64
    ):
        raise ValueError("malformed envelope")
    return Envelope(float(ts), body.encode(), sig)


def verify(key: bytes, topic: str, env: Envelope) -> bool:
    """Whether ``env`` was signed with ``key`` for ``topic``."""
    want = hmac.new(key, _canonical(topic, env.ts, env.body), hashlib.sha256).hexdigest()
    return hmac.compare_digest(want, env.sig)
