"""Every command fails the same way: one line on stderr, the documented exit code, no
traceback, nothing but JSON (or nothing) on stdout."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from core.errors import EXIT_UNUSABLE
from tests.cli.support import cli, cli_process

PLACEHOLDER = {int: "1", float: "1"}


def _subparsers(parser: argparse.ArgumentParser) -> argparse._SubParsersAction | None:
    return next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)


def _value(action: argparse.Action) -> str:
    if action.choices:
        return str(next(iter(action.choices)))
    return PLACEHOLDER.get(action.type, "x")  # type: ignore[call-overload]


def _minimal(parser: argparse.ArgumentParser) -> list[str]:
    """The fewest arguments ``parser`` accepts: positionals and required options."""
    argv = []
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        if not action.option_strings:
            if action.nargs not in ("?", "*"):
                argv.append(_value(action))
        elif action.required:
            argv += [action.option_strings[0], _value(action)]
    return argv


def _commands() -> list[list[str]]:
    """Every subcommand (and sub-subcommand) with minimal valid arguments, from the parser
    itself, so a new command is covered the day it is added."""
    from core.cli import build_parser

    out = []
    for name, sub in _subparsers(build_parser()).choices.items():
        nested = _subparsers(sub)
        if nested is None:
            out.append([name, *_minimal(sub)])
        else:
            out += [[name, inner, *_minimal(p)] for inner, p in nested.choices.items()]
    return out


COMMANDS = _commands()


def test_the_command_list_is_what_help_shows(tmp_path):
    r = cli_process("--help", home=tmp_path / "home")
    assert r.code == 0
    names = {c[0] for c in COMMANDS}
    assert len(names) >= 30
    for name in names:
        assert name in r.out


def test_minimal_arguments_parse():
    from core.cli import build_parser

    parser = build_parser()
    for argv in COMMANDS:
        args = parser.parse_args(argv)  # SystemExit here means the test builds bad argv
        assert callable(args.func), argv


@pytest.fixture
def blocked_home(tmp_path, monkeypatch) -> Path:
    """GLOVEWATCH_HOME under a plain file: the data folder cannot be created."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file")
    home = blocker / "gw-home"
    monkeypatch.setenv("GLOVEWATCH_HOME", str(home))
    monkeypatch.delenv("GLOVEWATCH_DB_URL", raising=False)
    return home


def _assert_one_line_data_folder_error(code: int, err: str, out: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == EXIT_UNUSABLE, (code, err)
    assert len(lines) == 1, err
    assert lines[0].startswith("glovewatch: The data folder") and "GLOVEWATCH_HOME" in lines[0]
    assert "Traceback" not in err and out == ""


@pytest.mark.parametrize("argv", COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_every_command_with_an_unwritable_data_folder(blocked_home, capfd, argv):
    r = cli(capfd, *argv)
    _assert_one_line_data_folder_error(r.code, r.err, r.out)
    assert not blocked_home.exists()


@pytest.mark.parametrize("argv", [["detect", "photo.jpg", "--json"], ["users", "list"]])
def test_unwritable_data_folder_as_a_process(tmp_path, argv):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = cli_process(*argv, home=blocker / "home")
    _assert_one_line_data_folder_error(r.code, r.err, r.out)


def test_wrong_weights_exit_2_with_one_sentence(gw_home, capfd, bare_images, tmp_path):
    bad = tmp_path / "w.pt"
    bad.write_text("nope")
    r = cli(capfd, "detect", bare_images[0], "--weights", bad, "--backend", "pytorch", "--json")
    assert r.code == EXIT_UNUSABLE
    assert r.err_lines == [r.err_lines[-1]] and r.err_lines[0].startswith("glovewatch: w.pt")
    assert "yolo26n" not in r.err and "Traceback" not in r.err and r.out == ""


def test_wrong_weights_as_a_process(tmp_path, bare_images):
    bad = tmp_path / "w.pt"
    bad.write_bytes(b"")
    r = cli_process(
        "detect", bare_images[0], "--weights", bad, "--backend", "pytorch", home=tmp_path / "home"
    )
    assert r.code == EXIT_UNUSABLE and r.out == ""
    assert r.err_lines == ["glovewatch: w.pt: the file is empty, not a model."]


def test_evaluate_with_wrong_weights(gw_home, capfd, mini, tmp_path):
    bad = tmp_path / "m.pt"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    r = cli(capfd, "evaluate", "--data", mini, "--weights", bad, "--json")
    assert r.code == EXIT_UNUSABLE and r.out == ""
    assert len(r.err_lines) == 1 and "m.pt" in r.err


def test_evaluate_bad_data(gw_home, capfd, tmp_path):
    r = cli(capfd, "evaluate", "--data", tmp_path / "none.yaml", "--json")
    assert r.code == EXIT_UNUSABLE and r.out == ""
    assert r.err_lines == ["glovewatch: Data set not found: none.yaml"]


def test_evaluate_missing_split_names_the_others(gw_home, capfd, mini):
    r = cli(capfd, "evaluate", "--data", mini, "--split", "holdout", "--json")
    assert r.code == EXIT_UNUSABLE and r.out == ""
    assert "no 'holdout' split (it has: train, val, test)" in r.err


def test_evaluate_tiled_rejects_bad_tiles(gw_home, capfd, mini):
    with pytest.raises(SystemExit) as exit_:
        cli(capfd, "evaluate-tiled", "--data", mini, "--tiles", "640:1.5")
    assert exit_.value.code == EXIT_UNUSABLE
    assert "overlap" in capfd.readouterr().err


def test_unknown_station_action_is_a_usage_error(gw_home, capfd):
    with pytest.raises(SystemExit) as exit_:
        cli(capfd, "stations", "explode")
    assert exit_.value.code == 2
