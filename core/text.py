"""Small text helpers every layer uses: file-name slugs and redaction of secrets.

Redaction is the one place that knows what a secret looks like in a URL: the password of
``scheme://user:password@host`` (a password may itself hold ``@`` or ``/``), and the values of
query parameters named like credentials (``token``, ``key``, ``password`` ...). Log lines,
status messages and stored rows all go through it.
"""

from __future__ import annotations

import re

MASK = "***"

_SLUG = re.compile(r"[^A-Za-z0-9_.-]+")
# A URL inside free text: scheme://, then anything up to white space or a quote.
_URL_IN_TEXT = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+")
_SECRET_PARAM = re.compile(
    r"(?i)([?&;](?:[a-z0-9_.-]*(?:token|secret|passw(?:or)?d|pwd|pass|key|sig|signature|auth"
    r"|credential|session)[a-z0-9_.-]*)=)([^&#;\s]*)"
)
# What follows the userinfo's '@': a host (name, IPv4 or [IPv6]) and optional port, then
# the end, a path, a query or a fragment.
_HOST_AFTER = re.compile(r"^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(:\d+)?(?=[/?#]|$)")


def slug(text: str, limit: int = 60, fallback: str = "item") -> str:
    """``text`` as a safe file-name part: letters, digits, ``_ . -``; never empty."""
    return _SLUG.sub("-", text).strip("-.")[:limit] or fallback


def redact_url(url: str) -> str:
    """``url`` with the password of its user info and credential-like query values masked.

    ``rtsp://admin:p@ss/w0rd@cam:554/live`` -> ``rtsp://admin:***@cam:554/live``;
    ``https://h/x?token=abc`` -> ``https://h/x?token=***``. A user name alone is kept.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return _SECRET_PARAM.sub(lambda m: m.group(1) + MASK, url)
    # The user info ends at the right-most '@' that is followed by a host: a password may
    # contain '@' and '/', a host never does.
    at = -1
    for i in range(len(rest) - 1, -1, -1):
        if rest[i] == "@" and _HOST_AFTER.match(rest[i + 1 :]):
            at = i
            break
    if at >= 0:
        user, colon, _password = rest[:at].partition(":")
        rest = (f"{user}:{MASK}" if colon else user) + rest[at:]
    return scheme + sep + _SECRET_PARAM.sub(lambda m: m.group(1) + MASK, rest)


def url_endpoint(url: str) -> str:
    """Only the scheme and host of ``url`` (for logging a webhook whose path is its token)."""
    scheme, sep, _ = url.partition("://")
    if not sep:
        return "(not a URL)"
    host = redact_url(url).partition("://")[2].split("/", 1)[0].split("?", 1)[0]
    host = host.rpartition("@")[2]
    return f"{scheme}://{host}/…" if host else f"{scheme}://…"


def redact_text(text: str) -> str:
    """Every URL in ``text`` passed through :func:`redact_url`."""
    if "://" not in text and "=" not in text:
        return text
    return _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), text)


def has_credentials(url: str) -> bool:
    """Whether ``url`` carries a password or a credential-like query value."""
    return redact_url(url) != url
