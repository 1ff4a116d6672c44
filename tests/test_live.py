"""The live pipeline on real video files made from the test images, with the real model."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from core import store as st
from core.alerts import Alerter, beep_wav
from core.bench import write_clip
from core.detector import InferenceParams
from core.episodes import EpisodeConfig
from core.live import FrameProcessor, LiveConfig, SourceRunner, SourceStatus
from core.stations import StationRule, Zone, save_rule

PARAMS = InferenceParams(imgsz=320)


@pytest.fixture(scope="module")
def clip(tmp_path_factory, bare_images, gloved_images):
    """bare 1.6 s, gloved 3.2 s, bare 1.6 s: two bare-hand episodes split by a gap > grace.

    The images are ones the shipped model gets right even at imgsz 320 (fast tests)."""
    path = tmp_path_factory.mktemp("clips") / "shift.mp4"
    return write_clip([bare_images[4], gloved_images[0], gloved_images[4], bare_images[2]],
                      path, fps=5, seconds_each=1.6)


def _config(default_weights, **kw) -> LiveConfig:
    return LiveConfig(weights=default_weights, params=PARAMS, kind="file", source="shift.mp4",
                      **kw)


def test_file_pipeline_stores_episodes_coverage_and_evidence(gw_home, default_weights, clip):
    conn = st.connect()
    save_rule(conn, StationRule("saw", zones=(Zone("blade", ((0, 0), (1, 0), (1, 1))),)))
    proc = FrameProcessor(_config(default_weights, station="saw"))
    runner = SourceRunner(str(clip), proc, realtime=False).start()
    assert runner.join(180)
    assert runner.status()[0] is SourceStatus.ENDED
    snap = proc.snapshot()
    assert snap.frames == 32 and snap.dropped == 0 and snap.status == "stopped"
    assert 0 < snap.compliance < 1
    rows = conn.execute("SELECT * FROM events ORDER BY id").fetchall()
    assert len(rows) == 2, [dict(r) for r in rows]
    for r in rows:
        assert r["state"] == "closed" and r["station"] == "saw" and r["rule_version"] == 1
        assert r["class_name"] == "hand" and 0.5 < r["duration_s"] <= 1.6
        assert r["evidence_path"] and r["crop_path"] and r["session_id"] == snap.session_id
    assert len(snap.alerts) == 1  # second episode fell in the 30 s cooldown
    sess = conn.execute("SELECT kind, status, params_json FROM sessions").fetchone()
    assert sess["kind"] == "file" and sess["status"] == "finished"
    assert json.loads(sess["params_json"])["rule_version"] == 1
    cov = conn.execute("SELECT SUM(watched_s), SUM(bare_s), SUM(gloved_s) FROM coverage_hourly"
                       ).fetchone()
    assert 6.0 <= cov[0] <= 6.4 and cov[1] > 1 and cov[2] > 1


def test_real_time_replay_drops_stale_frames(gw_home, default_weights, clip):
    proc = FrameProcessor(_config(default_weights))
    # a slow consumer: replayed at 5 fps, but every frame takes ~0.4 s
    original = proc.process
    took: list[float] = []

    def slow(image, t=None, captured_at=None):
        start = time.monotonic()
        time.sleep(0.4)
        out = original(image, t, captured_at)
        took.append(time.monotonic() - start)
        return out

    proc.process = slow
    runner = SourceRunner(str(clip), proc, realtime=True).start()
    assert runner.join(120)
    snap = proc.snapshot()
    assert snap.dropped > 5 and snap.frames + snap.dropped == 32
    # lag does not build up: a frame waits at most for the one being processed
    assert snap.latency_ms <= 2 * max(took) * 1000 + 200


def test_corrupt_video_and_missing_file_fail_clearly(gw_home, default_weights, tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 100)
    for source in (bad, tmp_path / "missing.mp4"):
        runner = SourceRunner(str(source), FrameProcessor(_config(default_weights))).start()
        assert runner.join(30)
        status, message = runner.status()
        assert status is SourceStatus.FAILED and source.name in message
    assert st.connect().execute("SELECT COUNT(*) FROM sessions").fetchone()[0] == 0


def test_idle_stream_ends_its_session_and_restart_closes_orphans(gw_home, default_weights,
                                                                  bare_images):
    from core.media import read_image

    proc = FrameProcessor(_config(default_weights, idle_timeout_s=1.0,
                                  episodes=EpisodeConfig(min_duration_s=0.0)))
    assert proc.start()
    proc.process(read_image(bare_images[4]))
    conn = st.connect()
    assert conn.execute("SELECT state FROM events").fetchone()[0] == "open"
    deadline = time.monotonic() + 10
    while proc.active and time.monotonic() < deadline:  # the tab was closed: no more frames
        time.sleep(0.2)
    assert not proc.active and proc.snapshot().status == "interrupted"
    assert conn.execute("SELECT state FROM events").fetchone()[0] == "closed"
    assert conn.execute("SELECT status FROM sessions").fetchone()[0] == "interrupted"


def test_two_viewers_on_different_stations_at_once(gw_home, default_weights, clip):
    runners = [SourceRunner(str(clip), FrameProcessor(_config(default_weights, station=s)),
                            realtime=False).start() for s in ("saw", "lathe")]
    assert all(r.join(240) for r in runners)
    conn = st.connect()
    per_station = dict(conn.execute("SELECT station, COUNT(*) FROM events GROUP BY station"))
    assert per_station == {"saw": 2, "lathe": 2}


class _Hook(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802 (http.server API)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_alerts_cooldown_and_webhook(caplog):
    from core.episodes import OpenedEpisode

    server = HTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/hook"

    def opened(i, severity="warning"):
        return OpenedEpisode(i, st.EventRow("saw", "2026-01-01 08:00:00", severity=severity,
                                            class_name="hand", evidence_path="/e.jpg"))

    alerter = Alerter(cooldown_s=60, webhook_url=url)
    assert alerter.notify(opened(1)) is not None
    assert alerter.notify(opened(2)) is None  # cooling down
    assert alerter.notify(opened(3, "critical")).seq == 2  # critical is not held back
    alerter.wait_sent()
    server.shutdown()
    got = {m["event_id"]: m for m in _Hook.received}  # posted from parallel threads
    assert sorted(got) == [1, 3]
    assert got[3]["severity"] == "critical" and got[3]["station"] == "saw"
    assert got[1]["evidence_path"] == "/e.jpg" and "hand at saw" in got[1]["message"]
    dead = Alerter(cooldown_s=0, webhook_url="http://127.0.0.1:9/none", timeout_s=1)
    assert dead.notify(opened(4)) is not None  # a dead webhook does not raise
    dead.wait_sent()
    assert "webhook" in caplog.text
    assert beep_wav()[:4] == b"RIFF"


def test_camera_url_that_drops_is_reconnected(gw_home, default_weights, clip):
    """An MJPEG-over-HTTP camera sends 20 frames and hangs up; the runner reconnects."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    import cv2

    from core.media import iter_video

    jpegs = [cv2.imencode(".jpg", f)[1].tobytes() for _, f in iter_video(clip)][:20]
    gets: list[str] = []

    class Camera(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server API)
            gets.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
            self.end_headers()
            try:
                for jpg in jpegs:
                    self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\n"
                                     + f"Content-Length: {len(jpg)}\r\n\r\n".encode()
                                     + jpg + b"\r\n")
                    time.sleep(0.1)
            except OSError:
                pass  # the reader went away

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Camera)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/cam.mjpg"
    proc = FrameProcessor(LiveConfig(weights=default_weights, params=PARAMS, kind="stream",
                                     source=url))
    runner = SourceRunner(url, proc).start()
    seen = set()
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not (
            SourceStatus.RECONNECTING in seen and runner.status()[0] is SourceStatus.RUNNING):
        seen.add(runner.status()[0])
        time.sleep(0.05)
    runner.stop()
    server.shutdown()
    assert SourceStatus.RECONNECTING in seen and len(gets) >= 2, (seen, gets)
    assert runner.status()[0] is SourceStatus.STOPPED and not runner.alive
    assert proc.snapshot().frames > 5
    row = st.connect().execute("SELECT kind, source, status FROM sessions").fetchone()
    assert tuple(row) == ("stream", url, "finished")


def test_bench_cli_reports_pipeline_plain_loop_and_memory(gw_home, default_weights, clip):
    import subprocess
    import sys

    from tests.conftest import ROOT

    out = subprocess.run(
        [sys.executable, "-m", "core", "bench", "--source", str(clip), "--backend", "pytorch",
         "--imgsz", "320", "--weights", str(default_weights), "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    res = json.loads(out.stdout)
    assert res["frames"] == 32 and res["pipeline_fps"] > 0 and res["plain_fps"] > 0
    assert res["ratio"] == round(res["pipeline_fps"] / res["plain_fps"], 2)
    assert set(res["stages_ms"]) == {"decode", "infer_track", "episodes", "annotate"}
    assert len(res["rss_mb"]) >= 2 and res["episodes"] == 2
    bad = subprocess.run([sys.executable, "-m", "core", "bench", "--source", "nope.mp4"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "nope.mp4" in bad.stderr
