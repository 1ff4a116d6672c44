"""Helpers for page tests: sign in through the page's own form, read what a page shows, and a
stand-in for the browser camera (unreachable under AppTest)."""

from __future__ import annotations

from typing import Any

PASSWORD = "correct-horse-7"
USERS = {"vera": "viewer", "otto": "operator", "erin": "engineer", "ada": "admin"}

# Elements whose text Streamlit renders as Markdown.
MARKDOWN_ELEMENTS = ("title", "header", "subheader", "markdown", "caption", "info", "warning",
                     "error", "success")


def sign_in(at: Any, name: str, password: str = PASSWORD) -> Any:
    """Fill the sign-in form of ``at`` and submit it (runs the app)."""
    at.text_input(key="gw-login-name").set_value(name)
    at.text_input(key="gw-login-password").set_value(password)
    at.button(key="FormSubmitter:gw-login-Sign in").click().run()
    return at


def texts(at: Any, kinds: tuple[str, ...] = MARKDOWN_ELEMENTS) -> list[str]:
    """Every Markdown-rendered string on the page (main area and sidebar)."""
    out = []
    for kind in kinds:
        out += [str(e.value) for e in at.get(kind)]
    return out


def values(elements: Any) -> list[str]:
    return [str(e.value) for e in elements]


def metrics(at: Any) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


class FakeWebrtc:
    """Stands in for ``webrtc_streamer``; keeps the arguments, so a test can feed real frames
    through the page's own callbacks."""

    def __init__(self) -> None:
        self.kwargs: dict[str, Any] = {}

    def __call__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
