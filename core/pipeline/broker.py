"""A private Mosquitto broker on a loopback port, for the fleet benchmark, the fault test and
the tests (``--broker auto``), anonymous or with the accounts and ACL of production
(:mod:`core.comms.mosquitto`). A plant runs its own broker (see docs/fleet-security.md)."""

from __future__ import annotations

import getpass
import logging
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

from core.comms.mosquitto import auth_lines, write_auth
from core.errors import ConfigError

log = logging.getLogger(__name__)

MOSQUITTO_PATHS = (
    "/usr/sbin/mosquitto",
    "/usr/local/sbin/mosquitto",
    "/opt/homebrew/sbin/mosquitto",
)


def find_mosquitto() -> str | None:
    """The mosquitto binary, or None when it is not installed."""
    found = shutil.which("mosquitto")
    if found:
        return found
    return next((p for p in MOSQUITTO_PATHS if Path(p).exists()), None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


class Mosquitto:
    """A Mosquitto process with persistence in ``folder`` (kept across :meth:`restart`)."""

    def __init__(
        self, folder: Path, port: int | None = None, users: Mapping[str, str] | None = None
    ):
        binary = find_mosquitto()
        if binary is None:
            raise ConfigError(
                "The mosquitto broker is not installed (Debian: apt-get install "
                "mosquitto); or set GLOVEWATCH_MQTT_URL to a running broker."
            )
        self.binary = binary
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.conf = self.folder / "mosquitto.conf"
        # with ``users`` (name -> password) as production runs: accounts and the ACL
        access = (
            auth_lines(*write_auth(self.folder, users))
            if users is not None
            else "allow_anonymous true\n"
        )
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\n" + access + "persistence true\n"
            f"persistence_location {self.folder}/\n"
            "autosave_interval 1\n"
            "max_queued_messages 0\n"
            f"user {getpass.getuser()}\n"
            f"log_dest file {self.folder}/mosquitto.log\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 10.0) -> Mosquitto:
        self.proc = subprocess.Popen(
            [self.binary, "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        end = time.monotonic() + timeout_s
        while not port_open(self.port):
            if self.proc.poll() is not None or time.monotonic() > end:
                raise ConfigError(
                    f"mosquitto did not start on port {self.port}; see "
                    f"{self.folder / 'mosquitto.log'}."
                )
            time.sleep(0.05)
        return self

    def kill(self) -> None:
        """SIGKILL: the broker dies as in a crash (what it had not saved is lost)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def restart(self) -> None:
        self.start()

    def __enter__(self) -> Mosquitto:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
