"""Tests for ``animagine tags``: completion from the shipped tag database."""

from __future__ import annotations

import json

import pytest

from animagine.apps.cli import main


def test_tags_prints_matches(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tags", "long_h", "--limit", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "long hair\tgeneral\t4350743",
        "low-tied long hair\tgeneral\t42325\tlong hair tied low",  # through its alias
    ]


def test_tags_alias_category_and_words(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tags", "sister", "clea", "-n", "1", "--category", "character"]) == 0
    assert capsys.readouterr().out == "sister claire\tcharacter\t1150\tsister cleaire\n"


def test_tags_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tags", "--json", "-n", "1", "longhorn al"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record == {
        "name": "longhorn alistar",
        "category": "character",
        "post_count": None,
        "alias": None,
    }


def test_tags_nothing_found(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tags", "zzzzqqqx"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "no tag starts with 'zzzzqqqx'" in captured.err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["tags", "-n", "0", "a"], "expected 1 or more matches"),
        (["tags", "-n", "x", "a"], "expected a number of matches"),
        (["tags", "-c", "copyright", "a"], "invalid choice"),
        (["tags"], "required"),
    ],
)
def test_tags_bad_usage(capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err
