"""The Label page under AppTest: collecting uploads (bad files said, good ones pre-labelled),
the progress figures, the frame shown for correction and the fine-tune plan. Drawing boxes
happens in the browser component, so the real-browser test drives that part."""

from __future__ import annotations

from typing import Any

from core.events.rules import StationRule
from core.events.stations import save_rule
from core.training import site
from tests.conftest import MINI
from tests.helpers import open_page
from tests.pages.support import metrics, plain, values

STATION = "Saw 4"


def _page() -> Any:
    at = open_page("pages/6_Label.py")
    at.selectbox(key="label-station").set_value(STATION).run()
    return at


def test_collect_uploads_then_plan_a_finetune(gw_home, store, bare_images, gloved_images):
    save_rule(store, StationRule(STATION), "test")
    at = _page()
    assert any("No frames yet" in plain(s) for s in values(at.info))
    assert at.button(key="label-collect").disabled  # nothing uploaded yet
    at.file_uploader(key="label-ups").set_value(
        [
            (bare_images[0].name, bare_images[0].read_bytes(), "image/jpeg"),
            (gloved_images[0].name, gloved_images[0].read_bytes(), "image/jpeg"),
            ("notes.jpg", b"plain text, not a picture", "image/jpeg"),
        ]
    )
    at.run()
    at.button(key="label-collect").click().run()
    assert not at.exception
    errors = [plain(e) for e in values(at.error)]
    assert len(errors) == 1 and errors[0].startswith("notes.jpg: not an image"), errors
    assert any("Collected 2 frames (0 near-copies skipped)" in plain(s) for s in values(at.success))
    frames = store.site.frames(STATION)
    assert len(frames) == 2 and all(f.status == "prelabelled" for f in frames)

    at.run()
    m = metrics(at)
    assert (m["Frames"], m["To check"], m["Done"]) == ("2", "2", "0")
    captions = " ".join(plain(c) for c in values(at.caption))
    assert "Frame 1 of 2" in captions
    assert "· batch ·" in captions  # where the frame came from, not a server path

    # the same photo again is a near-copy: nothing added
    at.file_uploader(key="label-ups").set_value(
        [(bare_images[0].name, bare_images[0].read_bytes(), "image/jpeg")]
    )
    at.run()
    at.button(key="label-collect").click().run()
    at.run()
    assert len(store.site.frames(STATION)) == 2

    # the fine-tune plan is stated before anything starts (the boxes are accepted as they are:
    # the editor is a browser component AppTest cannot click)
    for f in store.site.frames(STATION):
        site.save_labels(store, f.id, f.boxes, "erin", done=True)
    at.run()
    assert metrics(at)["Done"] == "2"
    at.text_input(key="label-base").set_value(str(MINI)).run()
    plan = " ".join(plain(s) for s in values(at.info))
    assert "labelled station frames" in plan and "epochs at 640 px" in plan, plan
    assert not store.runs.all()  # planning starts no run


def test_bad_base_data_is_said_not_raised(gw_home, store):
    save_rule(store, StationRule(STATION), "test")
    at = _page()
    at.text_input(key="label-base").set_value("/no/such/data.yaml").run()
    assert not at.exception
    assert at.warning and at.button(key="label-finetune").disabled


def test_reviewed_evidence_outside_the_store_is_refused_in_words(gw_home, store, gloved_images):
    """The reviewed-evidence button says which episode's frame it would not read (a path out
    of the evidence folder) and collects nothing from it."""
    from core.config import settings
    from core.storage.events import EventRow

    save_rule(store, StationRule(STATION), "test")
    secret = gw_home / "secret.jpg"
    secret.parent.mkdir(parents=True, exist_ok=True)
    secret.write_bytes(gloved_images[0].read_bytes())
    path = settings().evidence_dir / ".." / "secret.jpg"
    eid = store.events.insert(EventRow(STATION, "2026-11-03 09:00:00", evidence_path=str(path)))
    store.events.set_review(eid, "confirmed", None, "ana")
    at = _page()
    at.button(key="label-reviewed").click().run()
    assert not at.exception
    errors = [plain(e) for e in values(at.error)]
    assert errors == [
        f"Episode #{eid}: its evidence frame is not in the evidence store, so it was not collected."
    ], errors
    assert not store.site.frames(STATION)
