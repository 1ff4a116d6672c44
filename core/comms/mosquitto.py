"""The broker configuration for production: accounts, an ACL per worker, a TLS listener.

:func:`write_config` writes what ``core fleet mosquitto-config`` produces (see
docs/fleet-security.md): a password file with one account per worker (its name, with the
password its key gives) and one for the ingester, hashed as ``mosquitto_passwd`` does
(PBKDF2-SHA512), an ACL where a worker may publish only under its own topics and read only
its own acks, and a ``mosquitto.conf`` that refuses anonymous clients and listens with TLS.
The broker is the first wall (a stranger cannot even connect); the signatures the ingester
checks are the second (a worker that is let in still cannot speak for another).
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from core.comms import auth

ACL = f"""# GloveWatch: written by 'python -m core fleet mosquitto-config'.
# Workers log in with their name; %u is that name. Nobody else may read or write anything.
user {auth.INGESTER_USER}
topic read glovewatch/+/episodes
topic read glovewatch/+/coverage
topic read glovewatch/+/status
topic write glovewatch/+/acks

pattern write glovewatch/%u/episodes
pattern write glovewatch/%u/coverage
pattern write glovewatch/%u/status
pattern read glovewatch/%u/acks
"""


@dataclass(frozen=True)
class Tls:
    """The broker's certificate files (PEM)."""

    certfile: Path
    keyfile: Path
    cafile: Path | None = None


def password_line(user: str, password: str, iterations: int = 101) -> str:
    """One password-file line, as ``mosquitto_passwd`` writes it (``$7$``: PBKDF2-SHA512)."""
    salt = secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, 64)
    b64 = base64.b64encode
    return f"{user}:$7${iterations}${b64(salt).decode()}${b64(digest).decode()}"


def accounts(secret: bytes, workers: Mapping[str, int]) -> dict[str, str]:
    """User name -> password: the ingester and each worker (name -> key generation)."""
    out = {auth.INGESTER_USER: auth.ingester_password(secret)}
    for name, generation in workers.items():
        out[name] = auth.mqtt_password(auth.derive_key(secret, name, generation))
    return out


def _private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


def write_auth(folder: Path, users: Mapping[str, str]) -> tuple[Path, Path]:
    """The password file (mode 0600) and ACL for ``users``; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    passwd, acl = folder / "passwd", folder / "acl"
    _private(passwd, "".join(password_line(u, p) + "\n" for u, p in sorted(users.items())))
    acl.write_text(ACL)
    return passwd, acl


def auth_lines(passwd: Path, acl: Path) -> str:
    """The part of a mosquitto.conf that turns authentication and the ACL on."""
    return (
        "per_listener_settings false\n"
        "allow_anonymous false\n"
        f"password_file {passwd.resolve()}\n"
        f"acl_file {acl.resolve()}\n"
        "max_packet_size 1100000\n"  # the ingester refuses envelopes over 1 MiB anyway
    )


def write_config(
    folder: Path,
    users: Mapping[str, str],
    tls: Tls | None,
    port: int = 8883,
    plain_port: int | None = None,
) -> Path:
    """``folder/mosquitto.conf`` with its password file and ACL; a TLS listener on ``port``
    (when ``tls`` is given) and, for a test bench, a plain one on loopback ``plain_port``."""
    passwd, acl = write_auth(folder, users)
    lines = [
        auth_lines(passwd, acl),
        "persistence true\n",
        f"persistence_location {folder.resolve()}/\n",
    ]
    if tls is not None:
        lines.append(
            f"listener {port}\n"
            f"certfile {tls.certfile.resolve()}\n"
            f"keyfile {tls.keyfile.resolve()}\n"
            + (f"cafile {tls.cafile.resolve()}\n" if tls.cafile else "")
            + "tls_version tlsv1.2\n"
        )
    if plain_port is not None:
        lines.append(f"listener {plain_port} 127.0.0.1\n")
    conf = folder / "mosquitto.conf"
    conf.write_text("# GloveWatch broker: see docs/fleet-security.md\n" + "".join(lines))
    return conf
