"""``core fleet ...``: worker keys shown once, the broker configuration for production run
by a real Mosquitto with TLS, and the ingester and a worker talking through it."""

from __future__ import annotations

import getpass
import shutil
import subprocess
import threading
import time

import pytest

from core.comms import auth
from core.comms import messages as m
from core.comms.bus import BusPublisher, MqttSink
from core.comms.ingest import Ingester
from core.comms.outbox import Outbox
from core.pipeline.broker import find_mosquitto, free_port, port_open
from core.storage import open_store
from core.storage.coverage import CoverageRow
from core.storage.sessions import SessionInfo
from tests.cli.support import cli
from tests.pipeline.support import coverage_totals, wait_for


def test_add_worker_prints_its_key_once_and_the_store_keeps_only_a_fingerprint(
    gw_home, capfd, tmp_path
):
    r = cli(capfd, "fleet", "add-worker", "line-1", "--key-file", tmp_path / "line-1.key")
    assert r.code == 0
    (key_line,) = [x.strip() for x in r.out.splitlines() if x.strip().startswith("line-1:")]
    cred = auth.Credential.parse(key_line)
    assert (tmp_path / "line-1.key").read_text().strip() == key_line
    listed = cli(capfd, "fleet", "workers", "--json").json
    assert listed[0]["fingerprint"] == cred.fingerprint and cred.key.hex() not in str(listed)
    again = cli(capfd, "fleet", "add-worker", "line-1", "--json").json
    assert again["key"] != key_line  # a new key; the old one no longer verifies
    assert cli(capfd, "fleet", "revoke-worker", "line-1").code == 0
    assert "revoked" in cli(capfd, "fleet", "workers").out
    bad = cli(capfd, "fleet", "add-worker", "a/b")
    assert bad.code != 0 and "cannot be used" in bad.err
    assert cli(capfd, "fleet", "dead-letters", "--json").json == []


def _self_signed(folder) -> tuple:
    cert, key = folder / "server.crt", folder / "server.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.mark.skipif(
    find_mosquitto() is None or shutil.which("openssl") is None,
    reason="needs mosquitto and openssl (Debian: apt-get install mosquitto openssl)",
)
def test_the_generated_mosquitto_config_runs_with_tls_and_carries_a_signed_fleet(
    gw_home, capfd, tmp_path
):
    cert, key = _self_signed(tmp_path)
    cred = auth.Credential.parse(cli(capfd, "fleet", "add-worker", "w1", "--json").json["key"])
    out, port = tmp_path / "broker", free_port()
    r = cli(capfd, "fleet", "mosquitto-config", "--out", out, "--cert", cert, "--key", key,
            "--port", str(port))  # fmt: skip
    assert r.code == 0, r.err
    conf = (out / "mosquitto.conf").read_text()
    assert "allow_anonymous false" in conf and f"listener {port}" in conf
    assert "pattern write glovewatch/%u/episodes" in (out / "acl").read_text()
    with open(out / "mosquitto.conf", "a") as fh:  # as root in a test; a plant runs it as
        fh.write(f"user {getpass.getuser()}\nlog_dest file {out}/log\n")  # 'mosquitto'
    broker = subprocess.Popen([find_mosquitto() or "", "-c", str(out / "mosquitto.conf")])
    try:
        wait_for(lambda: port_open(port), 10, "the TLS listener")
        url = f"mqtts://127.0.0.1:{port}?ca={cert}"
        store = open_store()
        ing = Ingester(store, auth.load_secret(gw_home))
        stop, ready = threading.Event(), threading.Event()
        th = threading.Thread(target=ing.run, args=(url, stop, ready), daemon=True)
        th.start()
        assert ready.wait(15), "the ingester did not get through TLS and its account"
        pub = BusPublisher(url, cred, Outbox(None), 7, 1.0).start()
        info = SessionInfo("stream", "cam", "Saw 01", "m", "ab", 0.25, 0.7, 320)
        run = m.CameraRun("w1", "cam", "r1", "h", 7, info)
        ts = time.strftime("%Y-%m-%d %H:%M:%S")
        MqttSink(pub, run).coverage("Saw 01", None, [CoverageRow(ts, 1.0)])
        assert pub.flush(15)
        pub.close(timeout_s=1)
        stop.set()
        th.join(10)
        assert coverage_totals(store, "Saw 01")[0] == 1.0
    finally:
        broker.terminate()
        broker.wait(10)
    missing = cli(capfd, "fleet", "mosquitto-config", "--out", tmp_path / "x")
    assert missing.code != 0 and "--cert" in missing.err
