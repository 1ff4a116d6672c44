"""Alerts on new violation episodes: a cooldown, a list the page shows, an optional webhook.

The webhook gets a JSON POST (episode, station, severity, snapshot path) from a background
thread with a short timeout: a slow or dead receiver must never stall the video pipeline, so
failures are logged, not raised.
"""

from __future__ import annotations

import io
import json
import logging
import threading
import time
import urllib.error
import urllib.request
import wave
from collections import deque
from dataclasses import asdict, dataclass

import numpy as np

from core.episodes import OpenedEpisode

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
        return (f"{self.severity.upper()}: {self.class_name or 'violation'} at "
                f"{self.station}{where} since {self.started_at[11:]}")

    def payload(self) -> dict:
        data = asdict(self)
        data.pop("seq")
        data["message"] = self.message
        return data


def post_json(url: str, payload: dict, timeout_s: float = 3.0) -> bool:
    """POST ``payload`` as JSON; True on a 2xx answer, False (logged) on anything else."""
    req = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                 headers={"Content-Type": "application/json",
                                          "User-Agent": "GloveWatch"})
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            ok = 200 <= resp.status < 300
    except (urllib.error.URLError, OSError, ValueError) as exc:
        log.warning("webhook %s failed: %s", url, exc)
        return False
    if not ok:
        log.warning("webhook %s answered %s", url, resp.status)
    return ok


class Alerter:
    """Raises alerts for new episodes, at most one per station per ``cooldown_s``.

    Critical episodes are never held back by a cooldown that a warning started.
    """

    def __init__(self, cooldown_s: float = 30.0, webhook_url: str = "",
                 timeout_s: float = 3.0, keep: int = 20):
        self.cooldown_s = cooldown_s
        self.webhook_url = webhook_url.strip()
        self.timeout_s = timeout_s
        self._lock = threading.Lock()
        self._last: dict[tuple[str, str], float] = {}
        self._recent: deque[Alert] = deque(maxlen=keep)
        self._seq = 0
        self._senders: list[threading.Thread] = []

    def notify(self, opened: OpenedEpisode) -> Alert | None:
        """Raise an alert for ``opened`` unless its station is cooling down."""
        ev = opened.event
        now = time.monotonic()
        keys = [(ev.station, "critical")] if ev.severity == "critical" \
            else [(ev.station, "critical"), (ev.station, "warning")]
        with self._lock:
            if any(now - self._last.get(k, -1e9) < self.cooldown_s for k in keys):
                return None
            self._last[(ev.station, ev.severity)] = now
            self._seq += 1
            alert = Alert(self._seq, opened.event_id, ev.station, ev.severity, ev.class_name,
                          ev.zone, ev.started_at, ev.evidence_path)
            self._recent.append(alert)
        if self.webhook_url:
            sender = threading.Thread(target=post_json, name="glovewatch-webhook", daemon=True,
                                      args=(self.webhook_url, alert.payload(), self.timeout_s))
            sender.start()
            self._senders = [s for s in self._senders if s.is_alive()] + [sender]
        return alert

    def recent(self) -> list[Alert]:
        """Alerts raised so far (newest last, at most ``keep``)."""
        with self._lock:
            return list(self._recent)

    def wait_sent(self, timeout_s: float | None = None) -> None:
        """Wait for pending webhook posts (end of a session, tests)."""
        for s in list(self._senders):
            s.join(timeout_s if timeout_s is not None else self.timeout_s + 1)


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
