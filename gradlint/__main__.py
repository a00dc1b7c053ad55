"""``python -m gradlint``.

Python puts the current directory first on ``sys.path`` for ``-m``: a ``click.py``,
``tomllib.py`` or ``libcst/`` in the directory being linted would be imported (executed) in
place of the real module. gradlint never runs the code it lints, so that entry is removed
before anything else is imported (the ``gradlint`` package itself is already imported by
now). Python 3.11+ also offers ``python -P -m gradlint`` / ``PYTHONSAFEPATH=1``; the
``gradlint`` console script is not affected either way.
"""

import os
import sys


def _drop_cwd_from_path() -> None:
    if not sys.path:
        return
    first = sys.path[0]
    try:
        is_cwd = first in ("", ".") or os.path.samefile(first, os.getcwd())
    except OSError:
        is_cwd = False
    if is_cwd:
        del sys.path[0]


_drop_cwd_from_path()

from gradlint.cli import main  # noqa: E402 -- only after the guard above

main()
