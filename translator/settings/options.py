"""Command-line options generated from dataclass fields, so that each default lives once: in the
dataclass the command builds.

A field's `metadata` holds what the command line needs besides its name and default: `help`, and
optionally the argparse `type` that checks a value (`translator.settings.checks`), `metavar`, `choices`
or `flag` (the option's name when it is not `--field-name`); help is plain text (no argparse
`%` escapes) and ends with the default.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Sequence
from typing import Any


def field_default(cls: type, name: str) -> Any:
    """The default of dataclass field `name` of `cls` (its factory's value for a mutable one)."""
    f = {f.name: f for f in dataclasses.fields(cls)}[name]
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    raise ValueError(f"{cls.__name__}.{name} has no default")


def add_fields(parser: argparse.ArgumentParser, cls: type, names: Sequence[str], **changes: dict[str, Any]) -> None:
    """An option per field of `cls` in `names`, with the field's default, help and checks;
    `changes[name]` overrides any of them (e.g. `{"required": True}`)."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for name in names:
        if name not in fields:
            raise ValueError(f"{cls.__name__} has no field {name!r}")
        spec = {"default": field_default(cls, name), **fields[name].metadata, **changes.get(name, {})}
        flag = spec.pop("flag", "--" + name.replace("_", "-"))
        spec["help"] = str(spec.get("help", "")).replace("%", "%%")  # plain text; argparse formats help with %
        if spec.get("default") is not None and not spec.get("required"):
            spec["help"] = f"{spec['help']} (default {_shown(spec['default'])})".lstrip()
        parser.add_argument(flag, dest=name, **spec)


def field_values(args: argparse.Namespace, names: Sequence[str]) -> dict[str, Any]:
    """The parsed values of the options `add_fields` added for `names`, as dataclass keyword arguments."""
    return {name: getattr(args, name) for name in names}


def _shown(value: Any) -> str:
    return str(value).replace("%", "%%")
