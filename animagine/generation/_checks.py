"""Checks of single option values: names in messages, typed errors, numpy numbers accepted."""

from __future__ import annotations

import math
import numbers
import operator

from animagine.errors import GenerationArgumentError, GenerationTypeError
from animagine.limits import MAX_GUIDANCE, MAX_SIZE, MIN_SIZE

__all__ = [
    "bool_argument",
    "guidance_argument",
    "int_argument",
    "number_argument",
    "size_argument",
]


def int_argument(name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool):
        raise GenerationTypeError(f"{name} must be an int, got bool: {value!r}")
    try:
        number = operator.index(value)  # type: ignore[arg-type]  # numpy ints too
    except TypeError:
        raise GenerationTypeError(
            f"{name} must be an int, got {type(value).__name__}: {value!r}"
        ) from None
    if not low <= number <= high:
        raise GenerationArgumentError(f"{name} must be between {low} and {high}, got {number!r}")
    return int(number)


def size_argument(name: str, value: object) -> int:
    number = int_argument(name, value, MIN_SIZE, MAX_SIZE)
    if number % 8:
        raise GenerationArgumentError(
            f"{name} must be a multiple of 8, got {number} (nearest: {number // 8 * 8} or"
            f" {number // 8 * 8 + 8})"
        )
    return number


def guidance_argument(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise GenerationTypeError(
            f"guidance_scale must be a number, got {type(value).__name__}: {value!r}"
        )
    number = float(value)
    if not math.isfinite(number) or not 0 < number <= MAX_GUIDANCE:
        raise GenerationArgumentError(
            f"guidance_scale must be above 0 and at most {MAX_GUIDANCE:g}, got {value!r}"
        )
    return number


def bool_argument(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise GenerationTypeError(f"{name} must be a bool, got {type(value).__name__}: {value!r}")
    return value


def number_argument(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise GenerationTypeError(f"{name} must be a number, got {type(value).__name__}: {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise GenerationArgumentError(f"{name} must be a finite number, got {value!r}")
    return number
