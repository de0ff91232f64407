"""Checking the fields of a JSON request: each refusal names the field and says what it must be, e.g.
`context.result[0].value.x: must be a finite number, not NaN`. The rules live where the fields are read
(`app.py` for the body, `interactive.py` for the interactive context); the checks and messages live here."""

from __future__ import annotations

import json
import math
from typing import Any, NoReturn

import litetext

#: Stands for a field the request does not have (`data.get(name, MISSING)`), so messages can say "missing".
MISSING: Any = object()


class FieldError(litetext.InputError):
    """A field of a request is malformed (answered 400); the message names it."""


def refuse(where: str, expected: str, value: Any) -> NoReturn:
    """Raise `FieldError`: "`where`: must be `expected`, not `value`"."""
    raise FieldError(f"{where}: must be {expected}, not {describe(value)}")


def describe(value: Any) -> str:
    """A JSON value as a message shows it: in JSON's spelling (`NaN`, `Infinity`, `null`, `true`), short, with its
    kind where the spelling does not say it (`"false" (a string)`, `true (a boolean)`, `a list`)."""
    if value is MISSING:
        return "missing"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"{json.dumps(value[:40])}{'...' if len(value) > 40 else ''} (a string)"
    text = json.dumps(value) if isinstance(value, (bool, float)) or value is None else str(value)
    text = text if len(text) <= 40 else text[:37] + "..."
    return f"{text} (a boolean)" if isinstance(value, bool) else text


def number(value: Any, where: str, low: float, high: float, *, above_low: bool = False,
           unit: str = "percent of the image") -> float:
    """`value` as a float if it is a finite JSON number (a boolean is not one) from `low` (or above it, with
    `above_low`) to `high`; else a `FieldError` naming `where`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        refuse(where, "a number", value)
    if isinstance(value, float) and not math.isfinite(value):
        refuse(where, "a finite number", value)
    in_range = (low < value if above_low else low <= value) and value <= high
    if not in_range:
        bounds = f"above {low:g} and at most {high:g}" if above_low else f"from {low:g} to {high:g}"
        refuse(where, f"{bounds} ({unit})", value)
    return float(value)


def boolean(value: Any, where: str) -> bool:
    """`value` if it is `true` or `false` (a string, number or null is not a boolean); else a `FieldError`."""
    if not isinstance(value, bool):
        refuse(where, "true or false (a JSON boolean)", value)
    return value


def string(value: Any, where: str, expected: str = "a string") -> str:
    """`value` if it is a string; else a `FieldError` saying it must be `expected`."""
    if not isinstance(value, str):
        refuse(where, expected, value)
    return value
