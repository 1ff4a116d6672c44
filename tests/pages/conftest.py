"""Page-test fixtures: accounts of every role and the browser-camera stand-in."""

from __future__ import annotations

import pytest

from tests.pages.support import PASSWORD, USERS, FakeWebrtc


@pytest.fixture
def accounts(store) -> dict[str, str]:
    """One local account per role (name -> role), all with the password ``PASSWORD``."""
    from core.accounts import add_user

    # the admin first: the first account of a store is always an admin
    for name, role in sorted(USERS.items(), key=lambda item: item[1] != "admin"):
        add_user(store, name, role, PASSWORD, by="test")
    return dict(USERS)


@pytest.fixture
def fake_webrtc(monkeypatch: pytest.MonkeyPatch) -> FakeWebrtc:
    """``webrtc_streamer`` replaced (the browser's camera cannot reach AppTest)."""
    import streamlit_webrtc

    fake = FakeWebrtc()
    monkeypatch.setattr(streamlit_webrtc, "webrtc_streamer", fake)
    return fake
