"""``with_stack_room`` is a plain call: same result, same exceptions, room for deep recursion."""

from __future__ import annotations

import sys

import pytest

from gradlint.stack_room import with_stack_room


def _depth(n: int) -> int:
    return 0 if n == 0 else _depth(n - 1) + 1


def test_returns_the_result_and_passes_arguments() -> None:
    assert with_stack_room(divmod, 17, 5) == (3, 2)
    assert with_stack_room(_depth, 500) == 500


def test_exceptions_propagate_unchanged() -> None:
    with pytest.raises(ZeroDivisionError):
        with_stack_room(divmod, 1, 0)


@pytest.mark.skipif(sys.implementation.name != "cpython" or sys.version_info < (3, 11),
                    reason="the frame-stack chunks are CPython 3.11+'s")
def test_the_host_frame_opens_a_large_chunk() -> None:
    # The room is the host frame's value stack; a code object that lost it (a refactor that drops the
    # __code__ replacement) would silently bring the mmap churn back.
    assert with_stack_room.__code__.co_stacksize >= 50_000
    # and the recursion limit, not the room, still bounds what runs inside
    limit = sys.getrecursionlimit()
    with pytest.raises(RecursionError):
        with_stack_room(_depth, limit + 100)
