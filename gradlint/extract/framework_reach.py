"""Whether a file may define or build a model at all, decided from bytes before anything is parsed.

A file that mentions no framework marker can build a model only from its own project: through a
project module it imports that mentions one, directly or through other marker-free project
modules. transformers' 740 configuration, tokenization and processing modules import only each
other and modules above the linted tree; parsing and interpreting them was 1.4 s of a cold lint
that finds nothing in them. When the answer is "no", the decision rests on the bytes of every
project module it read (their digests, for the result cache) and on files that did not exist.
Anything it cannot settle (a relative import of a missing module, an import continued with a
backslash, an unreadable or oversized module) answers "may": the file is parsed, as before.
"""

from __future__ import annotations

import hashlib
import os
import re

from gradlint.extract.project_files import FILES, MAX_MODULE_BYTES, STDLIB_MODULES, import_root
from gradlint.records import dataclass

# A file that mentions none of these cannot define a PyTorch or Keras model by itself.
MODEL_MARKERS = (b"torch", b"keras", b"nn.", b"tensorflow", b"Module")
_FROM_IMPORT = re.compile(rb"^[ \t]*from[ \t]+(\.*)([\w.]*)[ \t]+import[ \t]*(\([^)]*\)|[^\n;]*)", re.MULTILINE)
_PLAIN_IMPORT = re.compile(rb"^[ \t]*import[ \t]+([^\n;#]*)", re.MULTILINE)
_MODULES_FOLLOWED = 400  # project modules read for one answer before answering "may"


def mentions_framework(data: bytes) -> bool:
    return any(marker in data for marker in MODEL_MARKERS)


@dataclass
class Reach:
    """The answer for one file: ``may`` build a model; when not, what the answer rests on."""

    may: bool
    dependencies: dict[str, str]  # project module path -> sha-256 of the bytes read
    missing: list[str]  # files whose absence decided it


class _Unsure(Exception):
    """An import the byte-level reading cannot settle: the file is parsed."""


def may_build_a_model(path: str, data: bytes, roots: tuple[str, ...] = ()) -> Reach:
    """Whether the file at ``path`` (its bytes ``data``) may define or build a model: it mentions a
    framework, or a project module it reaches through imports does."""
    if mentions_framework(data):
        return Reach(True, {}, [])
    if not os.path.isfile(path):
        return Reach(False, {}, [])  # an editor's buffer or stdin: it has no project of its own
    start = os.path.abspath(path)
    seen = {start}
    pending = [(start, data)]
    dependencies: dict[str, str] = {}
    missing: set[str] = set()
    try:
        while pending:
            importer, text = pending.pop()
            for module in _project_imports(importer, text, roots, missing):
                if module in seen or not module.endswith(".py"):
                    continue  # a namespace package's directory has no code of its own
                seen.add(module)
                if len(seen) > _MODULES_FOLLOWED:
                    raise _Unsure
                found = _read(module)
                if found is None or mentions_framework(found):
                    return Reach(True, {}, [])
                dependencies[module] = hashlib.sha256(found).hexdigest()
                pending.append((module, found))
    except _Unsure:
        return Reach(True, {}, [])
    return Reach(False, dependencies, sorted(missing))


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_MODULE_BYTES + 1)
    except OSError:
        return None
    return data if len(data) <= MAX_MODULE_BYTES else None


def _names(spelled: bytes) -> list[str]:
    """The names of ``import a, b as c`` / ``(a,\\n b)``, comments dropped."""
    if spelled.rstrip().endswith(b"\\"):
        raise _Unsure  # continued on the next line: its names are not all here
    text = b"\n".join(line.split(b"#")[0] for line in spelled.strip(b"()").splitlines())
    names = []
    for part in text.decode("ascii", "replace").split(","):
        name = part.strip().split(" as ")[0].strip()
        if name and name != "*":
            names.append(name)
    return names


def _project_imports(importer: str, data: bytes, roots: tuple[str, ...], missing: set[str]) -> list[str]:
    """The files of the importer's project its import statements may reach (a package's
    ``__init__.py`` and, for ``from package import name``, a submodule ``name``), as the
    interpreter's project resolution (``project.ProjectView``) would find them."""
    directory = os.path.dirname(importer)
    root = import_root(importer, roots)
    found: list[str] = []
    for match in _FROM_IMPORT.finditer(data):
        dots, module, names = len(match.group(1)), match.group(2).decode("ascii", "replace"), match.group(3)
        if dots:
            base = directory
            for _ in range(dots - 1):
                base = os.path.dirname(base)
            if not (base == root or base.startswith(root.rstrip(os.sep) + os.sep)):
                continue  # above the project root: not the project's code
            if module:
                target = FILES.module_file(base, module)
            else:  # ``from . import name``: the package, and its submodule ``name``
                init = os.path.join(base, "__init__.py")
                target = init if os.path.isfile(init) else base
            if target is None:
                raise _Unsure
        else:
            target = _absolute(directory, root, module, missing)
            if target is None:
                continue
        found.append(target)
        package = target if not target.endswith(".py") else \
            os.path.dirname(target) if os.path.basename(target) == "__init__.py" else None
        if package is not None:
            for name in _names(names):
                sub = FILES.module_file(package, name)
                if sub is not None:
                    found.append(sub)
    for match in _PLAIN_IMPORT.finditer(data):
        for dotted in _names(match.group(1)):
            parts = dotted.split(".")
            for depth in range(1, len(parts) + 1):  # ``import a.b`` runs a/__init__ and a/b
                target = _absolute(directory, root, ".".join(parts[:depth]), missing)
                if target is None:
                    break
                found.append(target)
    return found


def _bases(directory: str, root: str) -> list[str]:
    """Where an absolute import is looked for: the importer's directory, each one above it up to
    its project root, and the root's ``src/`` (``ProjectView._bases``)."""
    bases = [directory]
    while directory != root and directory.startswith(root):
        parent = os.path.dirname(directory)
        if parent == directory:
            break
        directory = parent
        bases.append(directory)
    bases.append(os.path.join(root, "src"))
    return bases


def _absolute(directory: str, root: str, dotted: str, missing: set[str]) -> str | None:
    """The project file ``import dotted`` names, None when it is no project module (the standard
    library, a third-party package); a project package without that submodule is unsettled."""
    top = dotted.split(".")[0]
    if not top or top in STDLIB_MODULES:
        return None
    for base in _bases(directory, root):
        if FILES.module_file(base, top) is None:
            missing.update((os.path.join(base, top + ".py"), os.path.join(base, top)))
            continue
        inner = FILES.module_file(base, dotted)
        if inner is None:
            raise _Unsure
        return inner
    return None


__all__ = ["MODEL_MARKERS", "Reach", "may_build_a_model", "mentions_framework"]
