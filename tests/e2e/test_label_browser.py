"""The adaptation loop end to end in a real browser: collect a station's frames from a
replayed clip, correct two boxes in the box editor, fine-tune a tiny run, compare it with
the station's model and promote it for that station."""

from __future__ import annotations

import time

import pytest

from core.events.rules import StationRule
from core.events.stations import save_rule
from tests.e2e.conftest import choose, goto, settle
from tests.helpers import make_video

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

STATION = "Saw 9"


def _wait(cond, timeout_s: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if cond():
            return
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what}")


def test_collect_correct_finetune_compare_promote(
    store, tmp_path, bare_images, gloved_images, tiny_gloves, app_server, browser_page, shots
):
    save_rule(store, StationRule(STATION), "test")
    clip = make_video(
        tmp_path / "saw9.mp4",
        [bare_images[0], gloved_images[0], bare_images[1], gloved_images[1]],
        repeat=10,
        fps=5,
    )
    page = browser_page
    goto(page, app_server, "Label", "Label: the plant's own frames")
    choose(page, "Station", STATION)
    # 1. collect from the replayed clip
    page.locator("[data-testid='stFileUploaderDropzoneInput']").first.set_input_files(str(clip))
    settle(page)
    page.get_by_role("button", name="Collect the uploads").click()
    settle(page, 300)
    shots(page, "collected")
    frames = lambda: app_server.store().site.frames(STATION)  # noqa: E731
    _wait(lambda: len(frames()) >= 3, 60, "collected frames")
    # 2. correct two boxes: draw a missing one as a bare hand, then re-class an existing one
    svg = page.locator(".gw-svg").first
    svg.wait_for(timeout=60_000)
    box = svg.bounding_box()
    assert box is not None
    x, y = box["x"] + 15, box["y"] + 15
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 70, y + 50, steps=6)
    page.mouse.up()
    page.keyboard.press("2")  # class 2: hand
    shots(page, "drawn")
    page.keyboard.press("Enter")  # done: the next frame comes
    settle(page)
    _wait(
        lambda: any(f.status == "done" for f in app_server.store().site.frames(STATION)),
        30,
        "the first frame done",
    )
    svg = page.locator(".gw-svg").first
    svg.wait_for(timeout=60_000)
    page.locator(".gw-svg rect.box").first.click()
    page.keyboard.press("1")  # re-class the selected box as a glove
    page.keyboard.press("Enter")
    settle(page)
    _wait(
        lambda: sum(f.status == "done" for f in app_server.store().site.frames(STATION)) >= 2,
        30,
        "the second frame done",
    )
    done = [f for f in app_server.store().site.frames(STATION) if f.status == "done"]
    assert any(
        b["class_id"] == 1 and b["x1"] < 0.2 and b["y1"] < 0.2 for f in done for b in f.boxes
    ), "the drawn bare hand was not kept"
    history = [h for f in done for h in app_server.store().site.history(f.id)]
    assert {h.action for h in history} >= {"prelabel", "done"}
    assert all(h.by for h in history)
    shots(page, "corrected")
    # 3. fine-tune a tiny run on the corrected frames plus the base data
    base = page.locator("[data-testid='stTextInput']", has_text="Base data set").first
    base.locator("input").fill(str(tiny_gloves / "data.yaml"))
    base.locator("input").press("Enter")
    settle(page)
    epochs = page.locator("[data-testid='stNumberInput']", has_text="Epochs").first
    epochs.locator("input").fill("1")
    epochs.locator("input").press("Enter")
    settle(page)
    assert page.get_by_text("labelled station frames").first.is_visible()  # the estimate
    page.get_by_role("button", name="Fine-tune").click()
    settle(page)
    runs = lambda: app_server.store().runs.all()  # noqa: E731
    _wait(lambda: runs() and runs()[0].status in ("finished", "failed"), 600, "the fine-tune")
    assert runs()[0].status == "finished", runs()[0].message
    # 4. compare and 5. promote for the station
    goto(page, app_server, "Label", "Label: the plant's own frames")
    choose(page, "Station", STATION)
    page.get_by_text("Give the base data set above to compare").wait_for()  # a new session
    base = page.locator("[data-testid='stTextInput']", has_text="Base data set").first
    base.locator("input").fill(str(tiny_gloves / "data.yaml"))
    base.locator("input").press("Enter")
    settle(page)
    page.get_by_role("button", name="Compare with the station's model").click()
    # the button comes with the scores (the spinner's text names the base test split too)
    page.get_by_role("button", name=f"Promote for {STATION}").wait_for(timeout=600_000)
    settle(page)
    shots(page, "compared")
    accept = page.get_by_text("Promote it anyway")
    if accept.count():
        accept.first.click()
        settle(page)
    page.get_by_role("button", name=f"Promote for {STATION}").click()
    settle(page)
    _wait(lambda: app_server.store().registry.active(STATION) is not None, 30, "the promotion")
    entry = app_server.store().registry.active(STATION)
    assert entry is not None and entry.run_id == runs()[0].id
    assert app_server.store().registry.active() is None  # the plant-wide model is unchanged
    # the comparison with the replaced model is gone with it
    page.get_by_text("now judges Saw 9").wait_for()
    settle(page)  # the flash is drawn first: the rest of that run replaces the old elements
    assert not page.get_by_role("button", name=f"Promote for {STATION}").count()
    shots(page, "promoted")
