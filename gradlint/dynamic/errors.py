"""Types the worker and the measurement share (``Skip``, ``Stage``).

A module of its own so that ``measure.py`` never imports ``worker.py``: under
``python -m gradlint.dynamic.worker`` the worker is ``__main__``, and a ``Skip`` class
defined there would not be the one ``measure.py`` raises.
"""

from __future__ import annotations

__all__ = ["Skip", "Stage"]


class Skip(Exception):
    """The model cannot be measured as described (not an error in the user's code)."""


class Stage:
    """What the worker is doing, for the failure reason (one worker process, one model)."""

    name = "starting the worker"
