"""Checks of single spec fields, with errors naming the field."""

from __future__ import annotations

import math

from .._errors import InputError


def spec_error(field: str, msg: str) -> InputError:
    """The error for one spec field."""
    return InputError(f"spec field {field}: {msg}")


def check_int(field, v, lo=None, hi=None) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise spec_error(field, f"must be an integer, got {v!r}.")
    if lo is not None and v < lo:
        raise spec_error(field, f"must be >= {lo}, got {v}.")
    if hi is not None and v > hi:
        raise spec_error(field, f"must be <= {hi}, got {v}.")
    return v


def check_float(field, v, positive=False, nonneg=False) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise spec_error(field, f"must be a finite number, got {v!r}.")
    if positive and not v > 0:
        raise spec_error(field, f"must be > 0, got {v}.")
    if nonneg and v < 0:
        raise spec_error(field, f"must be >= 0, got {v}.")
    return float(v)


def check_bool(field, v) -> bool:
    if not isinstance(v, bool):
        raise spec_error(field, f"must be true or false, got {v!r}.")
    return v


def check_str(field, v) -> str:
    if not isinstance(v, str):
        raise spec_error(field, f"must be a string, got {v!r}.")
    return v
