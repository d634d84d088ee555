"""Options generated from dataclass fields: the field's default, help, check and name."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

import pytest

from translator.settings.checks import positive_int
from translator.settings.options import add_fields, field_default, field_values


@dataclass
class Args:
    epochs: int = field(default=6, metadata={"help": "passes over the data", "type": positive_int})
    share: float = field(default=0.1, metadata={"help": "held-out share (10% of games)", "type": float})
    source: str = field(default="a", metadata={"help": "where pairs come from", "choices": ("a", "b"), "flag": "--from"})
    sizes: list[int] = field(default_factory=lambda: [1, 2])
    cap: int | None = field(default=None, metadata={"help": "stop early", "type": positive_int})


def parser(**changes) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="x")
    add_fields(p, Args, ("epochs", "share", "source", "cap"), **changes)
    return p


def test_defaults_come_from_the_dataclass():
    args = parser().parse_args([])
    assert Args(**field_values(args, ("epochs", "share", "source", "cap"))) == Args()


def test_values_are_checked_and_named():
    args = parser().parse_args(["--epochs", "9", "--from", "b", "--cap", "3"])
    assert (args.epochs, args.source, args.cap) == (9, "b", 3)
    with pytest.raises(SystemExit):
        parser().parse_args(["--epochs", "0"])
    with pytest.raises(SystemExit):
        parser().parse_args(["--from", "c"])


def test_help_ends_with_the_default(capsys):
    with pytest.raises(SystemExit):
        parser().parse_args(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "passes over the data (default 6)" in out
    assert "held-out share (10% of games) (default 0.1)" in out
    assert "stop early" in out and "stop early (default" not in out


def test_changes_win_and_unknown_fields_fail():
    with pytest.raises(SystemExit):
        parser(epochs={"required": True}).parse_args([])
    with pytest.raises(ValueError, match="no field 'nope'"):
        add_fields(argparse.ArgumentParser(), Args, ("nope",))
    assert field_default(Args, "sizes") == [1, 2]
