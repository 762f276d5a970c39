"""The entry point of the SQLite writer process: a script, run by its path.

``python -S -P .../_sqlite_boot.py PACKAGE MSGSPEC_ROOT PATH SYNCHRONOUS PARENT_PID``
(``ProcessWriter`` builds it: see ``writer_command``).

Why a script, not ``python -m hewitt.persistence._sqlite_worker``: ``-m``
first imports the ``hewitt`` package, the whole runtime and
``hewitt.persistence``, before the writer could take its first append (about
0.3 s; more where no bytecode is cached, with PYTHONDONTWRITEBYTECODE, when
every module is compiled from source at every start). Here the packages
``hewitt``, ``hewitt._runtime`` and ``hewitt.persistence`` are registered as
bare packages over their folders (``PACKAGE`` is the folder of ``hewitt``),
so importing the writer runs none of their ``__init__`` modules: the process
imports ``_sqlite_worker``, ``_sqlite_protocol``, ``_sqlite_sql``,
``_records`` and ``_runtime._errors``, the standard library's ``sqlite3``,
and msgspec.

The environment is the application's, unchanged. ``-S``: no ``site``, so
nothing is prepended to the standard library on ``sys.path`` and no ``.pth``
file runs; msgspec is found where the application found it (``MSGSPEC_ROOT``,
appended after the standard library). ``-P``: the script's own folder is not
put first on ``sys.path`` either. typing_extensions is not imported: msgspec
uses it when it is installed and falls back on ``typing`` otherwise, and the
writer's few types need nothing more (compiling it would be a third of the
start).
"""

import importlib
import importlib.machinery
import os
import sys
import types

#: The packages whose ``__init__`` the writer must not run, and their folders
#: relative to ``PACKAGE``.
_PACKAGES = (("hewitt", ""), ("hewitt._runtime", "_runtime"), ("hewitt.persistence", "persistence"))


def _bare_package(name: str, folder: str) -> None:
    spec = importlib.machinery.ModuleSpec(name, None, is_package=True)
    spec.submodule_search_locations = [folder]
    package = types.ModuleType(name)
    package.__spec__ = spec
    package.__path__ = [folder]
    sys.modules[name] = package


def _import_msgspec(root: str) -> None:
    if root not in sys.path:
        sys.path.append(root)
    sys.modules["typing_extensions"] = None  # type: ignore[assignment]
    try:
        importlib.import_module("msgspec")
    except ImportError:  # a msgspec that needs it after all: import it
        for name in list(sys.modules):
            if name in ("msgspec", "typing_extensions") or name.startswith("msgspec."):
                del sys.modules[name]
        importlib.import_module("msgspec")


def prepare(argv: list[str]) -> list[str]:
    """Register the bare packages and import msgspec; the writer's own
    arguments (``_sqlite_worker.main``'s ``argv``)."""
    package, msgspec_root, *arguments = argv[1:]
    for name, folder in _PACKAGES:
        _bare_package(name, os.path.join(package, folder))
    _import_msgspec(msgspec_root)
    return [argv[0], *arguments]


def main(argv: list[str]) -> None:
    arguments = prepare(argv)
    from hewitt.persistence._sqlite_worker import main as serve

    serve(arguments)


if __name__ == "__main__":
    main(sys.argv)
