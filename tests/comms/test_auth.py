"""Worker keys and signed envelopes: what verifies and what does not."""

from __future__ import annotations

import json
import os
import stat
import time

import pytest

from core.comms import auth, keys
from core.errors import ConfigError

SECRET = bytes(range(32))
TOPIC = "glovewatch/w1/episodes"


def test_a_signature_binds_the_key_the_topic_the_time_and_the_body():
    key, other = auth.derive_key(SECRET, "w1", 1), auth.derive_key(SECRET, "w2", 1)
    env = auth.unwrap(auth.seal(key, TOPIC, b'{"a":1}', time.time()))
    assert auth.verify(key, TOPIC, env)
    assert not auth.verify(other, TOPIC, env)  # another worker's key
    assert not auth.verify(key, "glovewatch/w2/episodes", env)  # another topic
    tampered = json.loads(auth.seal(key, TOPIC, b'{"a":1}', 100.0))
    for change in ({"body": '{"a":2}'}, {"ts": 101.0}):
        assert not auth.verify(key, TOPIC, auth.unwrap(json.dumps({**tampered, **change}).encode()))


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b'{"a":1}',
        b'{"v":1,"ts":"x","body":"{}","sig":"' + b"0" * 64 + b'"}',
        b'{"v":1,"ts":NaN,"body":"{}","sig":"' + b"0" * 64 + b'"}',
        b"x" * (auth.MAX_PAYLOAD + 1),
    ],
)
def test_what_is_not_an_envelope_is_refused_unread(payload):
    with pytest.raises(ValueError):
        auth.unwrap(payload)


def test_keys_are_derived_per_worker_and_generation_and_only_fingerprints_are_stored(store):
    first = keys.issue(store, SECRET, "w1")
    second = keys.issue(store, SECRET, "w1")  # issued again: rotation
    assert first.key != second.key and second.key == auth.derive_key(SECRET, "w1", 2)
    rec = store.fleet.worker_key("w1")
    assert rec is not None and (rec.generation, rec.fingerprint) == (2, second.fingerprint)
    assert first.key.hex() not in repr(store.fleet.worker_keys())
    assert auth.Credential.parse(second.text()) == second
    assert second.mqtt_password != second.key.hex()[:40]
    assert keys.revoke(store, "w1") and not keys.revoke(store, "w1")
    with pytest.raises(ConfigError, match="ingester"):
        keys.issue(store, SECRET, auth.INGESTER_USER)


def test_the_fleet_secret_file_is_private_and_required(tmp_path, monkeypatch):
    monkeypatch.delenv("GLOVEWATCH_FLEET_SECRET", raising=False)
    with pytest.raises(ConfigError, match="add-worker"):
        auth.load_secret(tmp_path)
    made = auth.load_secret(tmp_path, create=True)
    assert len(made) == 32 and auth.load_secret(tmp_path) == made
    assert stat.S_IMODE(os.stat(tmp_path / auth.SECRET_FILE).st_mode) == 0o600
    monkeypatch.setenv("GLOVEWATCH_FLEET_SECRET", "ab" * 32)
    assert auth.load_secret(tmp_path) == bytes.fromhex("ab" * 32)


def test_a_worker_key_must_be_given_and_be_its_own(tmp_path):
    cred = auth.Credential("w1", auth.derive_key(SECRET, "w1", 1))
    path = keys.save(cred, tmp_path / "w1.key")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert keys.load("w1", path, "") == cred
    assert keys.load("w1", None, cred.text()) == cred
    with pytest.raises(ConfigError, match="has no key"):
        keys.load("w1", None, "")
    with pytest.raises(ConfigError, match="not for worker"):
        keys.load("w2", path, "")
    with pytest.raises(ConfigError, match="64 hex"):
        auth.Credential.parse("w1:nothex")
