"""What signing costs: messages per second the ingester applies with and without it.

Part of ``core bench-fleet``: the same number of coverage messages (one second each, as a
camera's recorder flushes them) goes through the ingester twice, into the bench's store:
once signed at the "worker" and verified (:meth:`Ingester.apply`, what production runs), once
as bodies the ingester only checks and applies (:meth:`Ingester.apply_verified`). The
difference is the cost of HMAC-SHA256 on both sides plus the envelope.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from core.comms import auth, keys
from core.comms import messages as m
from core.comms.ingest import Ingester
from core.storage import Store
from core.storage.coverage import CoverageRow
from core.storage.sessions import SessionInfo


@dataclass(frozen=True)
class SigningCost:
    """Messages per second through the ingester, signed and not (same store, same work)."""

    messages: int
    signed_per_s: float
    unsigned_per_s: float
    sign_verify_us: float  # HMAC sign + verify of one message alone, in microseconds


def _messages(n: int, offset: int, run: m.CameraRun) -> list[m.Message]:
    start = datetime.now() - timedelta(seconds=offset + n + 5)
    return [
        m.coverage_message(
            run,
            run.session.station,
            [CoverageRow((start + timedelta(seconds=i)).strftime("%Y-%m-%d %H:%M:%S"), 1.0)],
            time.time(),
        )
        for i in range(n)
    ]


def measure_signing(store: Store, n: int = 1000) -> SigningCost:
    """Time ``n`` coverage messages through the ingester signed, then ``n`` unsigned."""
    secret = os.urandom(32)
    cred = keys.issue(store, secret, "bench-signing")
    info = SessionInfo("stream", "bench signing", "bench signing", "-", "0" * 64, 0.25, 0.7, 320)
    run = m.CameraRun(cred.worker, "bench signing", "sign", "bench-host", 1, info)
    ing = Ingester(store, secret)
    topic = m.topic(cred.worker, "coverage")
    signed, plain = _messages(n, 0, run), _messages(n + 1, n, run)
    ing.apply_verified(cred.worker, "coverage", plain.pop().encode())  # the session, once
    signed_s = plain_s = 0.0
    for i in range(0, n, 50):  # alternating blocks: the machine's load hits both alike
        t0 = time.perf_counter()
        for msg in signed[i : i + 50]:  # sealed as the worker does, verified, applied
            ing.apply(topic, auth.seal(cred.key, topic, msg.encode(), time.time()))
        t1 = time.perf_counter()
        for msg in plain[i : i + 50]:  # checked and applied only
            ing.apply_verified(cred.worker, "coverage", msg.encode())
        signed_s, plain_s = signed_s + t1 - t0, plain_s + time.perf_counter() - t1
    body = signed[0].encode()
    t0 = time.perf_counter()
    for _ in range(n):
        auth.verify(cred.key, topic, auth.unwrap(auth.seal(cred.key, topic, body, time.time())))
    hmac_s = time.perf_counter() - t0
    keys.revoke(store, cred.worker)
    return SigningCost(
        n,
        round(n / signed_s, 1),
        round(n / plain_s, 1),
        round(hmac_s / n * 1e6, 1),
    )
