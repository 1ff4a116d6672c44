"""Issuing, revoking and reading worker credentials (what ``core fleet ...`` does).

See :mod:`core.comms.auth` for why the store keeps only a generation and a fingerprint.
"""

from __future__ import annotations

import os
from pathlib import Path

from core.comms import auth, mosquitto
from core.comms.messages import check_worker_name
from core.errors import ConfigError
from core.storage import Store


def issue(store: Store, secret: bytes, name: str) -> auth.Credential:
    """A new key for worker ``name`` (a worker issued one before gets the next generation,
    and its old key stops working)."""
    name = check_worker_name(name)
    if name == auth.INGESTER_USER:
        raise ConfigError(f"{name!r} is the ingester's broker account: pick another name.")
    generation = store.fleet.next_key_generation(name)
    key = auth.derive_key(secret, name, generation)
    store.fleet.issue_key(name, generation, auth.fingerprint(key))
    return auth.Credential(name, key)


def revoke(store: Store, name: str) -> bool:
    """Stop accepting worker ``name``'s messages; False when it had no key."""
    return store.fleet.revoke_key(name)


def broker_accounts(store: Store, secret: bytes) -> dict[str, str]:
    """Broker user -> password for the ingester and every worker with a valid key."""
    live = {k.name: k.generation for k in store.fleet.worker_keys() if k.revoked_at is None}
    return mosquitto.accounts(secret, live)


def save(credential: auth.Credential, path: Path) -> Path:
    """Write a credential to ``path`` (mode 0600), for a worker to read."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(credential.text() + "\n")
    return path


def load(worker: str, key_file: Path | None, env_text: str) -> auth.Credential:
    """Worker ``worker``'s credential: ``key_file`` if given, else the text of
    ``GLOVEWATCH_WORKER_KEY``. ConfigError when there is none or it names another worker."""
    if key_file is not None:
        try:
            text = key_file.read_text()
        except OSError as exc:
            raise ConfigError(f"Cannot read the worker key {key_file}: {exc.strerror}.") from None
    else:
        text = env_text
    if not text.strip():
        raise ConfigError(
            f"Worker {worker} has no key: run 'python -m core fleet add-worker {worker}' on "
            "the ingester's machine and give the key with --key-file or GLOVEWATCH_WORKER_KEY."
        )
    cred = auth.Credential.parse(text)
    if cred.worker != worker:
        raise ConfigError(f"The worker key is for {cred.worker!r}, not for worker {worker!r}.")
    return cred


def issue_in(store: Store, home: Path, name: str) -> str:
    """Issue worker ``name`` a key under ``home``'s fleet secret (created when missing), as
    the fleet benchmark and fault test do for the workers they start; returns its text."""
    return issue(store, auth.load_secret(home, create=True), name).text()
