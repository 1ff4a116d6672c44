"""The command line's features, run in this process against a real store and the real model."""

from __future__ import annotations

import csv
import io
import json
import shutil
from datetime import date
from pathlib import Path

import pytest

from core.errors import EXIT_INPUT, EXIT_OK, EXIT_UNUSABLE
from tests.cli.support import cli

TODAY = date.today().isoformat()
PASSWORD = "correct horse battery"


# ---------------------------------------------------------------------------- detect


def test_detect_json_on_mixed_inputs(gw_home, capfd, tmp_path, bare_images, gloved_images):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "fake.jpg").write_text("text named .jpg")
    shutil.copy(gloved_images[0], folder / gloved_images[0].name)
    (folder / "notes.txt").write_text("not media: not picked up from a folder")
    save = tmp_path / "out"
    r = cli(
        capfd,
        "detect",
        bare_images[0],
        folder,
        tmp_path / "missing.jpg",
        "--json",
        "--save",
        save,
        "--station",
        "saw-2",
        "--backend",
        "pytorch",
    )
    assert r.code == EXIT_INPUT, r.err  # some inputs failed, the others were processed
    lines = r.json_lines  # stdout holds JSON only
    by = {x["source"]: x for x in lines}
    assert set(by) == {
        bare_images[0].name,
        gloved_images[0].name,
        "fake.jpg",
        str(tmp_path / "missing.jpg"),
    }
    bare = by[bare_images[0].name]
    assert bare["verdict"] == "violation" and bare["error"] is None and bare["violating"] >= 1
    assert any(d["role"] == "violation" and d["status"] == "violating" for d in bare["detections"])
    assert all(len(d["box"]) == 4 and 0 < d["confidence"] <= 1 for d in bare["detections"])
    assert by[gloved_images[0].name]["verdict"] == "compliant"
    assert "not an image" in by["fake.jpg"]["error"] and by["fake.jpg"]["verdict"] is None
    assert by[str(tmp_path / "missing.jpg")]["error"] == "no such file or folder"
    assert sorted(p.name for p in save.iterdir()) == sorted(
        Path(by[n]["annotated"]).name for n in (bare_images[0].name, gloved_images[0].name)
    )
    assert "Traceback" not in r.err


def test_detect_plain_text_and_nothing_to_do(gw_home, capfd, tmp_path, bare_images):
    r = cli(capfd, "detect", bare_images[0], "--backend", "pytorch", "--station", "Saw 01")
    assert r.code == EXIT_OK, r.err
    assert f"{bare_images[0].name}: violation" in r.out
    assert "session 1: 1 files, 0 failed" in r.out and "Saw 01" in r.out
    r = cli(capfd, "detect", tmp_path / "none", "--backend", "pytorch")
    assert r.code == EXIT_INPUT and "no such file or folder" in r.out


def test_detect_json_with_nothing_to_do_prints_no_text(gw_home, capfd, tmp_path):
    r = cli(capfd, "detect", tmp_path / "none", "--json", "--backend", "pytorch")
    assert r.code == EXIT_INPUT
    assert r.json_lines == [{"source": str(tmp_path / "none"), "error": "no such file or folder"}]
    assert "nothing to process" in r.err


@pytest.mark.parametrize(
    "argv",
    [
        ["users", "add", "sso-user", "--no-password", "--json"],
        ["stations", "set", "Saw 01", "--polarity", "no_gloves", "--json"],
        ["stations", "list", "--json"],
        ["registry", "--json"],
        ["datasets", "--json"],
        ["runs", "--json"],
        ["audit", "--json"],
        ["retention", "--days", "30", "--json"],
        ["db", "info", "--json"],
    ],
)
def test_json_commands_print_only_json(gw_home, capfd, argv):
    r = cli(capfd, *argv)
    assert r.code == EXIT_OK, r.err
    for line in r.out.splitlines():
        json.loads(line)  # every stdout line is JSON (or there is none)


# ---------------------------------------------------------------------------- evaluate


def test_evaluate_json_on_the_fixture_set(gw_home, capfd, tiny_gloves):
    r = cli(capfd, "evaluate", "--data", tiny_gloves, "--split", "val", "--json")
    assert r.code == EXIT_OK, r.err
    res = r.json
    assert res["images"] == 6 and res["split"] == "val" and res["tiles"] is None
    assert set(res["per_class_ap50"]) == {"glove", "hand"}
    assert res["map50"] > 0.5
    assert len(res["confusion"]) == 3 and any(any(row) for row in res["confusion"])


@pytest.mark.slow
def test_scorecard_and_agnostic_evaluation(gw_home, capfd, tiny_gloves):
    r = cli(capfd, "evaluate", "--data", tiny_gloves, "--split", "val", "--agnostic")
    assert r.code == EXIT_OK, r.err
    assert "class-agnostic" in r.out and "AP50 any hand" in r.out and "hands found" in r.out
    r = cli(capfd, "scorecard", "--data", tiny_gloves, "--json")
    assert r.code == EXIT_OK, r.err
    rows = r.json
    assert [row["split"] for row in rows] == ["test", "val"]
    assert rows[0]["labelled"] == ["glove", "hand"]
    assert 0 < rows[0]["agnostic_ap50"] <= 1 and rows[0]["note"] == ""


def test_merge_datasets_in_words(gw_home, capfd, mini, tmp_path):
    r = cli(capfd, "merge-datasets", mini, "--strategy", "naive", "--out", tmp_path / "m")
    assert r.code == EXIT_OK, r.err
    assert "gloves-mini: labels glove, hand" in r.out and "train 12, val 6, test 22" in r.out
    r = cli(capfd, "merge-datasets", mini, "--out", tmp_path / "m2")
    assert r.code == EXIT_UNUSABLE and "needs a teacher model" in r.err


def test_evaluate_tiled_json(gw_home, capfd, mini):
    r = cli(
        capfd,
        "evaluate-tiled",
        "--data",
        mini / "data.yaml",
        "--split",
        "val",
        "--tiles",
        "640:0.25:wbf",
        "--json",
    )
    assert r.code == EXIT_OK, r.err
    res = r.json
    assert res["tiles"] == "640:0.25:wbf:full" and res["images"] == 6
    assert res["map50"] > 0.5


# ----------------------------------------------------- data sets, runs, the registry


def _finished_run(store, gw_home: Path, data_yaml: str, weights: Path, name: str = "copy") -> int:
    """A run that ended with ``weights`` as its best.pt (the training itself is not the point
    here; a slow test below trains for real)."""

    def folder_for(run_id: int) -> str:
        return str(gw_home / "runs" / f"{run_id:04d}-{name}")

    rid = store.runs.create(
        name,
        "tiny",
        "yolo11n.yaml",
        "cpu",
        None,
        folder_for,
        lambda folder: {"data": data_yaml, "imgsz": 640, "epochs": 1},
    )
    run_dir = Path(folder_for(rid))
    (run_dir / "train" / "weights").mkdir(parents=True)
    shutil.copy(weights, run_dir / "train" / "weights" / "best.pt")
    store.runs.set(rid, status="finished", best={"mAP50": 0.9, "mAP50-95": 0.6})
    return rid


def test_datasets_promote_with_roles_registry_and_rollback(
    store, gw_home, capfd, tiny_gloves, default_weights
):
    r = cli(capfd, "import-dataset", tiny_gloves, "--name", "tiny", "--json")
    assert r.code == EXIT_OK, r.err
    imported = r.json
    assert imported["names"] == ["glove", "hand"] and imported["task"] == "detect"
    r = cli(capfd, "datasets", "--json")
    assert [(d["id"], d["name"]) for d in r.json] == [(imported["id"], "tiny")]
    assert r.json[0]["images"] == {"train": 12, "val": 6, "test": 22}

    rid = _finished_run(store, gw_home, imported["data"], default_weights)
    r = cli(capfd, "runs", "--json")
    assert [(x["id"], x["status"]) for x in r.json] == [(rid, "finished")]

    r = cli(
        capfd, "promote", rid, "--role", "hand=context", "--role", "glove=protected", "--by", "ann"
    )
    assert r.code == EXIT_OK, r.err
    assert f"run {rid} is the active model" in r.out and "hand=context" in r.out
    r = cli(capfd, "registry", "--json")
    (entry,) = r.json["entries"]
    assert entry["active"] and entry["run"] == rid and entry["by"] == "ann"
    assert entry["roles"] == {"glove": "protected", "hand": "context"}
    assert entry["scores"]["mAP50"] == 0.9
    assert f"run {rid}" in r.json["active"]
    assert (gw_home / "models" / entry["path"]).is_file()

    r = cli(capfd, "promote", rid, "--role", "hand=maybe")
    assert r.code == EXIT_UNUSABLE and len(r.err_lines) == 1 and "--role takes" in r.err

    r = cli(capfd, "rollback")
    assert r.code == EXIT_OK and "shipped default" in r.out
    r = cli(capfd, "registry", "--json")
    assert r.json["active"].startswith("shipped default")
    assert not r.json["entries"][0]["active"]
    actions = [a["action"] for a in cli(capfd, "audit", "--json").json]
    assert actions[:2] == ["model.rollback", "model.promote"] and "dataset.import" in actions


def test_promote_an_unknown_run(gw_home, capfd):
    r = cli(capfd, "promote", "999")
    assert r.code == EXIT_UNUSABLE and r.err_lines == ["glovewatch: No training run '999'."]


@pytest.mark.slow
def test_compare_scores_run_and_active_on_the_same_split(
    store, gw_home, capfd, tiny_gloves, default_weights
):
    imported = cli(capfd, "import-dataset", tiny_gloves, "--json").json
    rid = _finished_run(store, gw_home, imported["data"], default_weights)
    r = cli(capfd, "compare", rid, "--split", "val", "--json")
    assert r.code == EXIT_OK, r.err
    cmp = r.json
    assert cmp["candidate"]["images"] == cmp["active"]["images"] == 6
    assert cmp["candidate"]["map50"] == pytest.approx(cmp["active"]["map50"])  # same model
    assert cmp["candidate_is_worse"] is False
    assert cmp["active_model"] == default_weights.name
    r = cli(capfd, "promote", rid, "--split", "val")
    assert r.code == EXIT_OK, r.err
    assert "val split (6 images" in r.out


@pytest.mark.slow
def test_train_compare_and_promote_a_real_run(gw_home, capfd, tiny_gloves):
    """One epoch at 64 px: a real run, far worse than the shipped model, so promoting it
    needs the explicit confirmation."""
    r = cli(
        capfd,
        "train",
        "--data",
        tiny_gloves,
        "--model",
        "yolo11n.yaml",
        "--epochs",
        "1",
        "--imgsz",
        "64",
        "--batch",
        "4",
        "--device",
        "cpu",
        "--name",
        "tiny-run",
        "--extra",
        "{workers: 0, plots: false}",
        "--wait",
        "--json",
    )
    assert r.code == EXIT_OK, r.err
    run = r.json  # one JSON document; the progress lines went to stderr
    assert run["status"] == "finished", run["message"]
    assert "'tiny-run' running on cpu" in r.err
    assert (Path(run["run_dir"]) / "train" / "weights" / "best.pt").is_file()
    r = cli(capfd, "compare", "tiny-run", "--split", "val", "--json")
    assert r.code == EXIT_OK, r.err
    assert r.json["candidate_is_worse"] is True
    r = cli(capfd, "promote", "tiny-run", "--split", "val")
    assert r.code == EXIT_UNUSABLE and "scores lower than the active model" in r.err
    r = cli(
        capfd, "promote", "tiny-run", "--split", "val", "--accept-lower", "--role", "hand=violation"
    )
    assert r.code == EXIT_OK, r.err
    r = cli(capfd, "registry", "--json")
    assert r.json["entries"][0]["run"] == run["id"] and r.json["entries"][0]["active"]


# ---------------------------------------------------------------------------- report


def _episodes(store) -> None:
    from core.storage.events import EventRow

    t = f"{TODAY} 10:00:00"
    store.events.insert_many(
        [
            EventRow("Saw 01", t, duration_s=5, class_name="hand", severity="critical"),
            EventRow("Saw 01", f"{TODAY} 10:05:00", duration_s=6, class_name="hand"),
            EventRow(
                "Saw 01",
                f"{TODAY} 10:10:00",
                duration_s=7,
                class_name="no_glove",
                severity="critical",
            ),
            EventRow(
                "Press 2", f"{TODAY} 10:15:00", duration_s=8, class_name="hand", severity="critical"
            ),
        ]
    )
    press = next(e for e in store.events.matching(_filter()) if e.station == "Press 2")
    store.events.set_review(press.id, "confirmed", None, "ann")


def _filter():
    from core.storage.filters import HistoryFilter

    return HistoryFilter(date.today(), date.today())


def _csv_rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text())))


def test_report_filters_by_class_severity_and_review(store, capfd, tmp_path):
    _episodes(store)
    out, csv_path = tmp_path / "r.xlsx", tmp_path / "r.csv"
    r = cli(
        capfd,
        "report",
        "--from",
        TODAY,
        "--to",
        TODAY,
        "--class",
        "hand",
        "--severity",
        "critical",
        "--review",
        "unreviewed",
        "--out",
        out,
        "--csv",
        csv_path,
        "--json",
    )
    assert r.code == EXIT_OK, r.err
    assert r.json["xlsx"] == str(out) and "severity: critical" in r.json["filter"]
    rows = _csv_rows(csv_path)
    assert [
        (x["station"], x["class"], x["severity"], x["review"], x["duration_s"]) for x in rows
    ] == [("Saw 01", "hand", "critical", "unreviewed", "5.0")]
    from openpyxl import load_workbook

    wb = load_workbook(out)
    assert len(wb.sheetnames) >= 2
    r = cli(
        capfd,
        "report",
        "--from",
        TODAY,
        "--to",
        TODAY,
        "--review",
        "confirmed",
        "--csv",
        csv_path,
        "--out",
        out,
    )
    assert r.code == EXIT_OK
    assert [x["station"] for x in _csv_rows(csv_path)] == ["Press 2"]
    r = cli(
        capfd,
        "report",
        "--from",
        TODAY,
        "--to",
        TODAY,
        "--class",
        "hand",
        "--class",
        "no_glove",
        "--station",
        "Saw 01",
        "--csv",
        csv_path,
        "--out",
        out,
    )
    assert r.code == EXIT_OK
    assert sorted(x["duration_s"] for x in _csv_rows(csv_path)) == ["5.0", "6.0", "7.0"]


@pytest.mark.parametrize(
    "dates, message",
    [
        (("2026-02-30", "2026-03-01"), "is not a date"),
        (("2026-03-05", "2026-03-01"), "before it starts"),
    ],
)
def test_report_with_bad_dates_is_one_line(gw_home, capfd, tmp_path, dates, message):
    r = cli(capfd, "report", "--from", dates[0], "--to", dates[1], "--out", tmp_path / "x.xlsx")
    assert r.code == EXIT_UNUSABLE and r.out == ""
    assert len(r.err_lines) == 1 and message in r.err and "Traceback" not in r.err


def test_report_rejects_an_unknown_severity(gw_home, capfd):
    with pytest.raises(SystemExit):
        cli(capfd, "report", "--from", TODAY, "--to", TODAY, "--severity", "mild")


# ---------------------------------------------------------------------------- users


def test_users_add_list_set_role_disable(store, capfd, monkeypatch):
    from core.accounts import AccountError, sign_in

    r = cli(
        capfd,
        "users",
        "add",
        "ann",
        "--role",
        "admin",
        "--password-stdin",
        stdin=PASSWORD + "\n",
        monkeypatch=monkeypatch,
    )
    assert r.code == EXIT_OK, r.err
    r = cli(
        capfd,
        "users",
        "add",
        "bob",
        "--password-stdin",
        stdin=PASSWORD + "\n",
        monkeypatch=monkeypatch,
    )
    assert r.code == EXIT_OK, r.err
    assert sign_in(store, "ann", PASSWORD).role.label == "admin"
    with pytest.raises(AccountError):
        sign_in(store, "ann", "wrong password!")
    users = {u["name"]: u for u in cli(capfd, "users", "list", "--json").json}
    assert {n: (u["role"], u["disabled"], u["password"]) for n, u in users.items()} == {
        "ann": ("admin", False, True),
        "bob": ("viewer", False, True),
    }

    assert cli(capfd, "users", "set-role", "bob", "--role", "engineer").code == EXIT_OK
    assert cli(capfd, "users", "disable", "bob").code == EXIT_OK
    users = {u["name"]: u for u in cli(capfd, "users", "list", "--json").json}
    assert (users["bob"]["role"], users["bob"]["disabled"]) == ("engineer", True)
    with pytest.raises(AccountError):
        sign_in(store, "bob", PASSWORD)  # disabled accounts cannot sign in

    r = cli(capfd, "users", "disable", "ann")
    assert r.code == EXIT_UNUSABLE and "last active admin" in r.err and len(r.err_lines) == 1
    r = cli(capfd, "users", "set-role", "ann", "--role", "viewer")
    assert r.code == EXIT_UNUSABLE and "last active admin" in r.err

    assert cli(capfd, "users", "enable", "bob").code == EXIT_OK
    r = cli(
        capfd,
        "users",
        "passwd",
        "bob",
        "--password-stdin",
        stdin="another long secret\n",
        monkeypatch=monkeypatch,
    )
    assert r.code == EXIT_OK
    assert sign_in(store, "bob", "another long secret").name == "bob"

    text = cli(capfd, "users", "list").out
    assert "ann" in text and "engineer" in text
    actions = [
        a["action"]
        for a in cli(capfd, "audit", "--json").json
        if not a["action"].startswith("user.sign_in")
    ]
    assert actions == [
        "user.password",
        "user.enable",
        "user.disable",
        "user.set_role",
        "user.add",
        "user.add",
    ]


@pytest.mark.parametrize(
    "argv, stdin, message",
    [
        (["users", "add", "carl", "--password-stdin"], "short\n", "at least 10 characters"),
        (["users", "add", "x", "--no-password"], None, "2-64 letters"),
        (["users", "set-role", "nobody", "--role", "admin"], None, "no user 'nobody'"),
        (["users", "set-role"], None, "Give the user name"),
    ],
)
def test_user_errors_are_one_line(gw_home, capfd, monkeypatch, argv, stdin, message):
    r = cli(capfd, *argv, stdin=stdin, monkeypatch=monkeypatch)
    assert r.code == EXIT_UNUSABLE and len(r.err_lines) == 1 and message in r.err


def test_users_without_password_and_duplicates(store, capfd, monkeypatch):
    assert (
        cli(capfd, "users", "add", "sso-user", "--no-password", "--role", "operator").code
        == EXIT_OK
    )
    assert store.users.get("sso-user").password_hash is None
    r = cli(capfd, "users", "add", "sso-user", "--no-password")
    assert r.code == EXIT_UNUSABLE and "already a user" in r.err
