"""The dynamic check's resource limits and their valid ranges: one table for the command line,
``[tool.gradlint.dynamic]`` and ``DynamicOptions``. A limit outside its range is an error, never
silently rounded (``memory-mb = 0.5`` once became 0, which removed the memory cap)."""

from __future__ import annotations

import math

from gradlint.records import dataclass


@dataclass(frozen=True)
class Limit:
    whole: bool  # an integer is required (a float, even 3.0, is refused)
    low: float
    high: float
    low_open: bool = False  # the lower bound itself is not allowed
    unit: str = ""

    def describe(self) -> str:
        kind = "a whole number" if self.whole else "a number"

        def num(x: float) -> str:
            return f"{int(x)}" if self.whole else f"{x:g}"

        low = f"> {num(self.low)}" if self.low_open else f"≥ {num(self.low)}"
        return f"{kind} {low} and ≤ {num(self.high)}{(' ' + self.unit) if self.unit else ''}"


LIMITS: dict[str, Limit] = {
    "timeout": Limit(False, 0.0, 86_400.0, low_open=True, unit="seconds"),
    "seeds": Limit(True, 1, 100),
    "batch-size": Limit(True, 1, 65_536),
    # The worker imports torch under the cap: below ~64 MB of address space nothing can start.
    "memory-mb": Limit(True, 64, 16 * 1024 * 1024, unit="MB"),
    "vanishing-ratio": Limit(False, 0.0, 1.0, low_open=True),
    "exploding-ratio": Limit(False, 1.0, 1e300),
    "jobs": Limit(True, 1, 1024),
    "sequence-length": Limit(True, 1, 1_000_000),
    "image-size": Limit(True, 1, 65_536),
}


def limit_error(key: str, value: object) -> str | None:
    """Why ``value`` is not a valid ``key``, or None when it is."""
    spec = LIMITS[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"{key} must be {spec.describe()}, got {value!r}"
    if spec.whole and not isinstance(value, int):
        return f"{key} must be {spec.describe()}, got {value!r}"
    if not math.isfinite(value) or value < spec.low or (spec.low_open and value == spec.low) or value > spec.high:
        return f"{key} must be {spec.describe()}, got {value!r}"
    return None
