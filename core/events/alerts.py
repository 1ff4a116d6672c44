"""Alerts on new violation episodes: a cooldown, a list the page shows, an optional webhook.

The webhook is sent by one background thread from a bounded queue, so a slow or dead
receiver never stalls the video pipeline: each call has a total deadline (a receiver that
trickles its answer is cut off), failures are retried with back-off, a full queue refuses
new alerts (logged and counted), and nothing in a log line shows the URL's secret path
or token. With ``GLOVEWATCH_WEBHOOK_SECRET`` each body is signed
(``X-GloveWatch-Signature: sha256=<HMAC-SHA256 of the body>``).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import http.client
import io
import json
import logging
import queue
import threading
import time
import urllib.parse
import wave
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from core.config import DEFAULTS
from core.text import url_endpoint

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Alert:
    """One alert as shown on the page and sent to the webhook."""

    seq: int  # increases by one per alert raised in this process
    event_id: int
    station: str
    severity: str
    class_name: str | None
    zone: str | None
    started_at: str
    evidence_path: str | None

    @property
    def message(self) -> str:
        where = f" in zone '{self.zone}'" if self.zone else ""
        return (
            f"{self.severity.upper()}: {self.class_name or 'violation'} at "
            f"{self.station}{where} since {self.started_at[11:]}"
        )

    def payload(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("seq")
        data.pop("evidence_path")  # a server path means nothing to the receiver
        data["message"] = self.message
        return data


def sign(body: bytes, secret: str) -> str:
    """The signature header value of ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookSender:
    """Delivers JSON payloads to one URL from a background thread (see module docstring)."""

    def __init__(
        self,
        url: str,
        secret: str = "",
        deadline_s: float = 5.0,
        retries: int = 3,
        backoff_s: float = 0.5,
        max_queue: int = 100,
    ):
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError("The webhook URL must be an http(s) address.")
        self.url, self.secret = url, secret
        self.shown = url_endpoint(url)
        self.deadline_s, self.retries, self.backoff_s = deadline_s, retries, backoff_s
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue(maxsize=max_queue)
        self.sent = 0
        self.failed = 0
        self.dropped = 0
        self._idle = threading.Event()
        self._idle.set()
        self._thread = threading.Thread(target=self._run, name="glovewatch-webhook", daemon=True)
        self._thread.start()

    def send(self, payload: dict[str, Any]) -> bool:
        """Queue ``payload``; False (logged) when the queue is full and it was dropped."""
        self._idle.clear()
        try:
            self._queue.put_nowait(payload)
            return True
        except queue.Full:
            self.dropped += 1
            log.warning("webhook %s: queue full, alert dropped", self.shown)
            return False

    def wait_idle(self, timeout_s: float | None = None) -> bool:
        """Wait until every queued payload was delivered or given up."""
        return self._idle.wait(timeout_s)

    def close(self, timeout_s: float = 10.0) -> None:
        self._queue.put(None)
        self._thread.join(timeout_s)

    def _run(self) -> None:
        while True:
            payload = self._queue.get()
            if payload is None:
                self._idle.set()
                return
            try:
                self._deliver(payload)
            except Exception:  # the sender must never die: log and go on
                self.failed += 1
                log.exception("webhook %s: unexpected failure", self.shown)
            if self._queue.empty():
                self._idle.set()

    def _deliver(self, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        for attempt in range(1, self.retries + 1):
            error = self._post_once(body)
            if error is None:
                self.sent += 1
                return
            log.warning(
                "webhook %s: attempt %d of %d failed: %s", self.shown, attempt, self.retries, error
            )
            if attempt < self.retries:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
        self.failed += 1

    def _post_once(self, body: bytes) -> str | None:
        """POST once within the total deadline; None on a 2xx answer, else why not."""
        result: dict[str, str | None] = {"error": f"no answer within {self.deadline_s:.0f} s"}
        holder: dict[str, http.client.HTTPConnection] = {}

        def call() -> None:
            parts = urllib.parse.urlsplit(self.url)
            cls = (
                http.client.HTTPSConnection
                if parts.scheme == "https"
                else http.client.HTTPConnection
            )
            conn = cls(parts.hostname or "", parts.port, timeout=self.deadline_s)
            holder["conn"] = conn
            headers = {"Content-Type": "application/json", "User-Agent": "GloveWatch"}
            if self.secret:
                headers["X-GloveWatch-Signature"] = sign(body, self.secret)
            path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            try:
                conn.request("POST", path, body=body, headers=headers)
                status = conn.getresponse().status
                result["error"] = None if 200 <= status < 300 else f"answered HTTP {status}"
            except (OSError, http.client.HTTPException, ValueError) as exc:
                result["error"] = type(exc).__name__
            finally:
                conn.close()

        worker = threading.Thread(target=call, daemon=True, name="glovewatch-webhook-call")
        worker.start()
        worker.join(self.deadline_s)
        if worker.is_alive():  # a trickling receiver: cut the connection
            conn = holder.get("conn")
            if conn is not None and conn.sock is not None:
                with contextlib.suppress(OSError):
                    conn.sock.shutdown(2)
            worker.join(1.0)
            return f"no complete answer within {self.deadline_s:.0f} s"
        return result["error"]


class Alerter:
    """Raises alerts for new episodes, at most one per station per ``cooldown_s``.

    Critical episodes are never held back by a cooldown that a warning started.
    """

    def __init__(
        self,
        cooldown_s: float = DEFAULTS.cooldown_s,
        webhook_url: str = "",
        webhook_secret: str = "",
        keep: int = 20,
    ):
        self.cooldown_s = cooldown_s
        self.webhook = (
            WebhookSender(webhook_url.strip(), webhook_secret) if webhook_url.strip() else None
        )
        self._lock = threading.Lock()
        self._last: dict[tuple[str, str], float] = {}
        self._recent: deque[Alert] = deque(maxlen=keep)
        self._seq = 0

    def notify(
        self,
        event_id: int,
        station: str,
        severity: str,
        class_name: str | None,
        zone: str | None,
        started_at: str,
        evidence_path: str | None,
    ) -> Alert | None:
        """Raise an alert for a new episode unless its station is cooling down."""
        now = time.monotonic()
        keys = (
            [(station, "critical")]
            if severity == "critical"
            else [(station, "critical"), (station, "warning")]
        )
        with self._lock:
            if any(now - self._last.get(k, -1e9) < self.cooldown_s for k in keys):
                return None
            self._last[(station, severity)] = now
            self._seq += 1
            alert = Alert(
                self._seq, event_id, station, severity, class_name, zone, started_at, evidence_path
            )
            self._recent.append(alert)
        if self.webhook is not None:
            self.webhook.send(alert.payload())
        return alert

    def recent(self) -> list[Alert]:
        """Alerts raised so far (newest last, at most ``keep``)."""
        with self._lock:
            return list(self._recent)

    def clear(self) -> None:
        """Forget the shown alerts (the page's banner clears when a source stops)."""
        with self._lock:
            self._recent.clear()

    def wait_sent(self, timeout_s: float | None = None) -> None:
        """Wait for pending webhook posts (end of a session, tests)."""
        if self.webhook is not None:
            self.webhook.wait_idle(timeout_s)


def beep_wav(freq_hz: float = 880.0, seconds: float = 0.6, rate: int = 16000) -> bytes:
    """A short two-tone alarm as WAV bytes, for the page's alert sound."""
    t = np.arange(int(rate * seconds)) / rate
    tone = np.sin(2 * np.pi * np.where(t < seconds / 2, freq_hz, freq_hz * 1.25) * t)
    fade = np.minimum(1.0, np.minimum(t, seconds - t) * 40)
    pcm = (tone * fade * 0.6 * 32767).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return buf.getvalue()
