"""`argparse` types for the numeric options of the command line.

Each refuses a bad value while the arguments are parsed, with argparse's usual error naming the
option (`argument --games: expected an integer >= 1, got '-3'`), instead of letting it reach the
code that would fail later, or worse, do something else.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def int_in(low: int, high: int | None = None) -> Callable[[str], int]:
    """An integer `>= low` (and `<= high`)."""
    what = f"an integer >= {low}" if high is None else f"an integer in [{low}, {high}]"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    parse.__name__ = what
    return parse


def float_in(low: float, high: float = math.inf, low_open: bool = False) -> Callable[[str], float]:
    """A finite number in `[low, high]` (`(low, high]` with `low_open`)."""
    bounds = f"{'(' if low_open else '['}{low:g}, {high:g}]" if math.isfinite(high) else f"{'>' if low_open else '>='} {low:g}"
    what = f"a number in {bounds}" if math.isfinite(high) else f"a number {bounds}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not math.isfinite(value) or value < low or value > high or (low_open and value == low):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    parse.__name__ = what
    return parse


positive_int = int_in(1)
non_negative_int = int_in(0)
non_negative_float = float_in(0.0)
positive_float = float_in(0.0, low_open=True)
