"""Redaction of secrets in URLs, free text and log records, and file-name slugs."""

from __future__ import annotations

import logging

import pytest

from core.logs import RedactingFilter
from core.text import has_credentials, redact_text, redact_url, slug, url_endpoint


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("rtsp://user:pass@cam", "rtsp://user:***@cam"),  # no path after the host
        ("rtsp://user:pass@cam:554", "rtsp://user:***@cam:554"),
        ("rtsp://admin:p@ss/w0rd@cam:554/live", "rtsp://admin:***@cam:554/live"),
        ("rtsp://admin:a/b@c@10.0.0.7/x?y=1", "rtsp://admin:***@10.0.0.7/x?y=1"),
        ("rtsp://op:pw@[fe80::1]:554/s", "rtsp://op:***@[fe80::1]:554/s"),
        ("https://hooks.example/x?token=abc&ch=7", "https://hooks.example/x?token=***&ch=7"),
        ("https://h/x?api_key=k1;Signature=s2", "https://h/x?api_key=***;Signature=***"),
        ("rtsp://viewer@cam/live", "rtsp://viewer@cam/live"),  # a user name alone is kept
        ("rtsp://cam:554/live", "rtsp://cam:554/live"),
    ],
)
def test_redact_url(url, shown):
    assert redact_url(url) == shown
    assert has_credentials(url) == (url != shown)


def test_redact_text_masks_every_url_in_a_sentence():
    text = "cannot open rtsp://a:s3cr3t@cam1/x, then 'http://h/p?password=hunter2' failed"
    clean = redact_text(text)
    assert "s3cr3t" not in clean and "hunter2" not in clean
    assert "rtsp://a:***@cam1/x," in clean and "password=***" in clean


def test_url_endpoint_keeps_only_scheme_and_host():
    assert url_endpoint("https://u:pw@hooks.example:8443/T0KEN/path?k=v") == (
        "https://hooks.example:8443/…"
    )
    assert url_endpoint("no url") == "(not a URL)"


def test_log_records_are_redacted_in_message_args_and_exceptions(caplog):
    log = logging.getLogger("glovewatch.test.redact")
    log.addFilter(RedactingFilter())
    try:
        with caplog.at_level(logging.INFO, logger="glovewatch.test.redact"):
            log.info("camera %s dropped", "rtsp://op:p@ss/w0rd@cam:554/live")
            try:
                raise OSError("POST https://hooks.example/x?token=T0K failed")
            except OSError:
                log.exception("webhook")
    finally:
        log.filters.clear()
    shown = caplog.text
    assert "p@ss" not in shown and "w0rd" not in shown and "T0K" not in shown
    assert "rtsp://op:***@cam:554/live" in shown and "token=***" in shown


def test_slug_is_a_safe_file_name_part():
    assert slug("Saw 3 / Early shift") == "Saw-3-Early-shift"
    assert slug("../../etc") == "etc"
    assert slug("///", fallback="station") == "station"
    assert len(slug("x" * 200, limit=40)) == 40
