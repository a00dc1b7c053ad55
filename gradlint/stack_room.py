"""``with_stack_room``: run a deeply recursive computation with room on CPython's frame stack.

CPython (3.11+) keeps Python frames in 16 KB chunks of a per-thread stack; a call that does not fit
maps a new chunk, and returning from the frame that opened it unmaps it at once. The extraction is a
recursive interpreter whose depth swings by dozens of frames, so it crosses chunk boundaries all the
time: on torchvision/models a cold lint made 21,600 mmap/munmap pairs (and faulted each new page in)
against 3,100 at 67c45dc. A frame with a large (unused) value stack opens one big chunk, and
everything it calls fits in the room behind it: one mapping per call instead."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

# Value-stack slots of the host frame: 70,000 × 8 bytes opens a 1 MB chunk with ~450 KB free for
# the frames the computation pushes (thousands of frames; the interpreter stops at a few hundred).
# The slots are never written, so their pages are never touched.
_ROOM_SLOTS = 70_000


def with_stack_room(function: Callable[..., T], *args: object) -> T:
    """``function(*args)``, called from a frame that opens a large stack chunk."""
    return function(*args)


if sys.implementation.name == "cpython" and sys.version_info >= (3, 11):
    with_stack_room.__code__ = with_stack_room.__code__.replace(co_stacksize=_ROOM_SLOTS)
