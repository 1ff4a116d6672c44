"""The on-site loop's commands (``python -m core collect``), run in this process."""

from __future__ import annotations

from core.config import settings
from core.errors import EXIT_INPUT
from core.storage.events import EventRow
from tests.cli.support import cli


def test_collect_reviewed_says_which_evidence_it_refused(store, capfd, gloved_images):
    """A reviewed episode whose evidence path leads out of the evidence folder is not read:
    the command says so in a sentence (no server path) and exits as for bad input."""
    secret = settings().home / "secret.jpg"
    secret.parent.mkdir(parents=True, exist_ok=True)
    secret.write_bytes(gloved_images[0].read_bytes())
    row = EventRow(
        "Saw 4",
        "2026-11-03 09:00:00",
        evidence_path=str(settings().evidence_dir / ".." / "secret.jpg"),
    )
    eid = store.events.insert(row)
    store.events.set_review(eid, "confirmed", None, "ana")
    r = cli(capfd, "collect", "--station", "Saw 4", "--reviewed")
    assert r.code == EXIT_INPUT
    assert "Saw 4: 0 frames collected, 0 near-copies skipped, 1 not collected" in r.out
    assert (
        f"Episode #{eid}: its evidence frame is not in the evidence store, so it was not "
        "collected." in r.out
    )
    assert str(settings().home) not in r.out
    r = cli(capfd, "collect", "--station", "Saw 4", "--reviewed", "--json")
    assert r.code == EXIT_INPUT and r.json["added"] == 0 and len(r.json["errors"]) == 1
