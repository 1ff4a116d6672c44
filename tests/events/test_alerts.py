"""Alerts: the cooldown, the banner list, and the webhook against real (mis)behaving HTTP
receivers on 127.0.0.1."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import itertools
import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from datetime import date, datetime

import numpy as np
import pytest

from core.analytics import history as h
from core.events.alerts import Alerter, WebhookSender, beep_wav, sign
from core.events.recorder import EpisodeRecorder, RecordingContext
from core.events.rules import StationRule, Zone
from core.events.sinks import AlertingSink, StoreSink
from core.vision.detections import FrameDetections
from tests.events.scenes import dets, every, hand

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
ERROR = b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
TOKEN = "T0KEN-s3cr3t-path"
QUERY_SECRET = "q-abc123"


def _read_request(conn: socket.socket) -> tuple[str, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {
        k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])
    }
    want = int(headers.get("content-length", 0))
    while len(body) < want:
        chunk = conn.recv(4096)
        if not chunk:
            break
        body += chunk
    return lines[0], headers, body


class Receiver:
    """A TCP server on 127.0.0.1; ``answer(conn, n)`` answers the n-th request (0-based)."""

    def __init__(self, answer: Callable[[socket.socket, int], None]):
        self.answer = answer
        self.requests: list[tuple[float, str, dict[str, str], bytes]] = []
        self.stop = threading.Event()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._sock.settimeout(0.2)
        self.port = self._sock.getsockname()[1]
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def url(self, path: str = f"/hooks/{TOKEN}?token={QUERY_SECRET}") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        with conn:
            line, headers, body = _read_request(conn)
            with self._lock:
                n = len(self.requests)
                self.requests.append((time.monotonic(), line, headers, body))
            with contextlib.suppress(OSError):  # the client hung up
                self.answer(conn, n)

    def close(self) -> None:
        self.stop.set()
        self._sock.close()


@pytest.fixture
def receivers():
    made: list[Receiver] = []
    senders: list[WebhookSender] = []

    def make(answer):
        r = Receiver(answer)
        made.append(r)
        return r

    make.senders = senders  # type: ignore[attr-defined]
    yield make
    for s in senders:
        s.close(2)
    for r in made:
        r.close()


def _sender(receivers, url: str, **kw) -> WebhookSender:
    s = WebhookSender(url, **kw)
    receivers.senders.append(s)
    return s


def ok(conn, n):
    conn.sendall(OK)


def test_delivers_json_and_signs_the_body(receivers):
    r = receivers(ok)
    s = _sender(receivers, r.url(), secret="sesame")
    assert s.send({"station": "Saw", "n": 1})
    assert s.wait_idle(10) and s.sent == 1 and s.failed == 0
    (_, line, headers, body) = r.requests[0]
    assert line == f"POST /hooks/{TOKEN}?token={QUERY_SECRET} HTTP/1.1"
    assert json.loads(body) == {"station": "Saw", "n": 1}
    assert headers["content-type"] == "application/json"
    expected = "sha256=" + hmac.new(b"sesame", body, hashlib.sha256).hexdigest()
    assert headers["x-glovewatch-signature"] == sign(body, "sesame") == expected


def test_without_a_secret_there_is_no_signature(receivers):
    r = receivers(ok)
    s = _sender(receivers, r.url())
    s.send({"a": 1})
    assert s.wait_idle(10) and s.sent == 1
    assert "x-glovewatch-signature" not in r.requests[0][2]


def test_garbage_answer_does_not_kill_the_sender(receivers, caplog):
    def garbage_first(conn, n):
        conn.sendall(b"\x00\x01 this is not HTTP at all\r\n\r\n" if n == 0 else OK)

    r = receivers(garbage_first)
    s = _sender(receivers, r.url(), retries=1, deadline_s=5)
    s.send({"alert": 1})
    assert s.wait_idle(10) and s.failed == 1 and s.sent == 0
    s.send({"alert": 2})  # a later alert still goes out
    assert s.wait_idle(10) and s.sent == 1
    assert json.loads(r.requests[1][3]) == {"alert": 2}
    assert s._thread.is_alive()
    assert "attempt 1 of 1 failed" in caplog.text


def test_trickling_receiver_is_cut_off_at_the_deadline(receivers, caplog):
    def trickle(conn, n):
        for b in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 60:
            conn.sendall(bytes([b]))
            time.sleep(1.0)  # one byte per second: never a socket timeout

    r = receivers(trickle)
    s = _sender(receivers, r.url(), retries=1, deadline_s=2.0)
    t0 = time.monotonic()
    s.send({"alert": 1})
    assert s.wait_idle(15)
    elapsed = time.monotonic() - t0
    assert 1.9 <= elapsed < 5.0, elapsed
    assert s.failed == 1 and s.sent == 0
    assert "no complete answer within 2 s" in caplog.text


def test_failures_are_retried_with_back_off(receivers, caplog):
    r = receivers(lambda conn, n: conn.sendall(ERROR))
    s = _sender(receivers, r.url(), retries=3, backoff_s=0.2)
    s.send({"alert": 1})
    assert s.wait_idle(15)
    times = [req[0] for req in r.requests]
    assert len(times) == 3 and s.failed == 1 and s.sent == 0
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps[0] >= 0.2 and gaps[1] >= 0.4  # 0.2 s, then doubled
    assert "attempt 3 of 3 failed: answered HTTP 500" in caplog.text


def test_a_receiver_that_recovers_gets_the_alert(receivers):
    r = receivers(lambda conn, n: conn.sendall(ERROR if n < 2 else OK))
    s = _sender(receivers, r.url(), retries=3, backoff_s=0.05)
    s.send({"alert": 1})
    assert s.wait_idle(15) and s.sent == 1 and s.failed == 0 and len(r.requests) == 3


def test_queue_is_bounded_and_drops_are_counted(receivers, caplog):
    release = threading.Event()

    def hold(conn, n):
        release.wait(10)
        conn.sendall(OK)

    r = receivers(hold)
    s = _sender(receivers, r.url(), max_queue=2, deadline_s=10)
    assert s.send({"n": 0})
    deadline = time.monotonic() + 10
    while not r.requests and time.monotonic() < deadline:  # the sender is busy with it
        time.sleep(0.02)
    accepted = [s.send({"n": i}) for i in range(1, 6)]
    assert s.dropped == 3 and accepted.count(False) <= 3 and "queue full" in caplog.text
    release.set()
    assert s.wait_idle(15) and s.sent == 3 and len(r.requests) == 3


def test_log_lines_never_show_the_url_path_or_token(receivers, caplog):
    caplog.set_level(logging.DEBUG)
    r = receivers(lambda conn, n: conn.sendall(ERROR if n % 2 else b"garbage\r\n\r\n"))
    s = _sender(receivers, r.url(), retries=2, backoff_s=0.01, max_queue=1)
    for i in range(4):
        s.send({"n": i})
    assert s.wait_idle(15)
    assert s.failed >= 1 and caplog.records
    assert f"127.0.0.1:{r.port}" in caplog.text  # the endpoint is named ...
    assert TOKEN not in caplog.text and QUERY_SECRET not in caplog.text  # ... its secrets not
    assert "hooks" not in caplog.text


def test_only_http_urls_are_accepted():
    with pytest.raises(ValueError, match="http"):
        WebhookSender("ftp://example.org/x")
    with pytest.raises(ValueError, match="http"):
        WebhookSender("not a url")


def test_alerter_posts_the_alert_payload(receivers):
    r = receivers(ok)
    alerter = Alerter(cooldown_s=30, webhook_url=r.url(), webhook_secret="k")
    receivers.senders.append(alerter.webhook)
    a = alerter.notify(
        7, "Saw 3", "critical", "hand", "blade", "2026-01-05 10:00:00", "/data/evidence/x.jpg"
    )
    alerter.wait_sent(10)
    body = json.loads(r.requests[0][3])
    assert body["event_id"] == 7 and body["station"] == "Saw 3" and body["zone"] == "blade"
    assert body["message"] == a.message == "CRITICAL: hand at Saw 3 in zone 'blade' since 10:00:00"
    assert "evidence_path" not in body and "seq" not in body  # no server paths go out


def _notify(alerter: Alerter, station: str, severity: str, event_id: int = 1):
    return alerter.notify(event_id, station, severity, "hand", None, "2026-01-05 10:00:00", None)


def test_cooldown_per_station_and_critical_never_held_back_by_a_warning():
    alerter = Alerter(cooldown_s=60)
    assert _notify(alerter, "Saw", "warning") is not None
    assert _notify(alerter, "Saw", "warning") is None  # cooling down
    assert _notify(alerter, "Lathe", "warning") is not None  # another station
    assert _notify(alerter, "Saw", "critical") is not None  # a warning never holds it back
    assert _notify(alerter, "Saw", "critical") is None  # but a critical one does
    assert _notify(alerter, "Saw", "warning") is None
    shown = alerter.recent()
    assert [(a.station, a.severity) for a in shown] == [
        ("Saw", "warning"),
        ("Lathe", "warning"),
        ("Saw", "critical"),
    ]
    assert [a.seq for a in shown] == [1, 2, 3]


def test_cooldown_ends_and_clear_empties_the_banner():
    alerter = Alerter(cooldown_s=0.2)
    assert _notify(alerter, "Saw", "warning") is not None
    time.sleep(0.3)
    assert _notify(alerter, "Saw", "warning") is not None
    assert len(alerter.recent()) == 2
    alerter.clear()
    assert alerter.recent() == []
    assert _notify(alerter, "Lathe", "critical") is not None
    assert len(alerter.recent()) == 1


def test_recent_keeps_the_newest():
    alerter = Alerter(cooldown_s=0, keep=3)
    for i in range(5):
        _notify(alerter, f"S{i}", "warning", i)
    assert [a.event_id for a in alerter.recent()] == [2, 3, 4]


def test_alerting_sink_raises_one_alert_per_stored_episode(store):
    alerter = Alerter(cooldown_s=0)
    sink = AlertingSink(StoreSink(store), alerter)
    rule = StationRule("Saw", zones=(Zone("blade", ((0.5, 0), (1, 0), (1, 1), (0.5, 1))),))
    rec = EpisodeRecorder(RecordingContext("Saw", started=datetime(2026, 1, 5, 9)), rule, sink)
    image = np.zeros((100, 100, 3), np.uint8)
    script = (
        every(0.2, 0, 3, dets(hand("hand", (60, 10, 80, 30))))
        + every(0.2, 3.2, 6, dets())
        + every(0.2, 6.2, 9, dets(hand("hand", (10, 10, 30, 30))))
    )
    for t, d in script:
        rec.process(t, FrameDetections(d, (100, 100)), image)
    rec.finish()
    eps = h.episodes(store, h.HistoryFilter(date(2026, 1, 5), date(2026, 1, 5)), order="longest")
    alerts = alerter.recent()
    assert len(eps) == 2 and len(alerts) == 2
    assert {a.event_id for a in alerts} == {e.id for e in eps}
    assert [a.severity for a in alerts] == ["critical", "warning"]
    assert sink.recent_alerts() == alerts


def test_beep_is_a_short_wav():
    wav = beep_wav(seconds=0.5, rate=8000)
    assert wav[:4] == b"RIFF" and wav[8:12] == b"WAVE"
    assert len(wav) == 44 + 2 * 4000
