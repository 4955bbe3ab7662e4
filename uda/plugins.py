"""User code: modules imported by name or path (``uda train --import``) and installed plugins (entry points).

A user module registers components with the ordinary decorators (``@uda.register("recipe", "my_recipe")``,
``@register_config(...)``); importing it makes them usable by name. Two ways in:

- ``--import SPEC`` on the command line, or the config's top-level ``imports: [...]`` list. ``SPEC`` is a path to a
  ``.py`` file or a dotted module name on ``sys.path``. A run records its imports in ``config.yaml`` (files as
  absolute paths), so every later command on the run (``--resume``, ``evaluate``, ``predict``, ``translate``)
  imports them again before it resolves the config.
- an installed distribution that declares an entry point in the group ``uda.plugins``; the ``uda`` command loads
  every one of them once when it starts. The entry point names a module (imported) or a function without
  arguments (called after the import).

A file is imported once per process, as the module ``uda_user_<stem>`` (its folder is not put on ``sys.path``;
for several files, make a package and import it by its dotted name).

Example:
    >>> import tempfile, uda
    >>> from pathlib import Path
    >>> f = Path(tempfile.mkdtemp()) / "my_parts.py"
    >>> _ = f.write_text("import uda\\n@uda.register('loss', 'my_doctest_loss')\\ndef f():\\n    return 0\\n")
    >>> import_modules([str(f)]) == [str(f.resolve())]
    True
    >>> "my_doctest_loss" in uda.list_components("loss")
    True
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType

from ._errors import ConfigError, UdaError

#: The entry-point group of installed plugins.
ENTRY_POINT_GROUP = "uda.plugins"

_FILES: dict[str, ModuleType] = {}  # resolved path -> the module it was imported as
_PLUGINS_LOADED: list[str] | None = None  # names of the entry points loaded (None: not yet)


def is_file_spec(spec: str) -> bool:
    """Whether an import spec names a file (ends with ``.py`` or contains a path separator) rather than a module."""
    return spec.endswith(".py") or "/" in spec or "\\" in spec


def normalize(spec: str, relative_to: str | Path | None = None) -> str:
    """A spec as it is recorded: a file as its absolute path (relative ones resolved against ``relative_to``, else
    the working directory), a dotted module name unchanged.

    Example:
        >>> normalize("uda.losses")
        'uda.losses'
        >>> normalize("terms.py", "/data/cfg")
        '/data/cfg/terms.py'
    """
    spec = str(spec).strip()
    if not is_file_spec(spec):
        return spec
    path = Path(spec).expanduser()
    if not path.is_absolute():
        path = Path(relative_to if relative_to is not None else Path.cwd()) / path
    return str(path.resolve())


def import_module(spec: str, *, what: str = "--import", fix: str = "check the path") -> ModuleType:
    """Import one user module: a ``.py`` file (once per process) or a dotted module name.

    Args:
        spec: a path to a ``.py`` file or a dotted module name.
        what: where the spec came from, for the error message (``--import``, ``imports:`` of a config...).
        fix: what the message of a missing file tells the user to do.

    Returns:
        The imported module.

    Raises:
        ConfigError: the file does not exist, is not a ``.py`` file, or the module cannot be found.
        UdaError: the module raised while it was imported (the message names it and the exception).
    """
    spec = str(spec).strip()
    if not spec:
        raise ConfigError(f"{what}: an empty module name; pass a .py file or a dotted module name")
    if is_file_spec(spec):
        return _import_file(Path(normalize(spec)), what, fix)
    if not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", spec):
        raise ConfigError(f"{what} {spec!r}: neither a .py file nor a dotted module name such as my_package.terms")
    try:
        return importlib.import_module(spec)
    except ModuleNotFoundError as e:
        if e.name is not None and (spec == e.name or spec.startswith(e.name + ".")):
            raise ConfigError(f"{what} {spec}: no module of that name on sys.path; install it, add its folder to "
                              "PYTHONPATH or pass the path of its .py file") from None
        raise UdaError(f"{what} {spec}: importing it failed: {type(e).__name__}: {e}") from e
    except UdaError:
        raise
    except Exception as e:
        raise UdaError(f"{what} {spec}: importing it failed: {type(e).__name__}: {e}") from e


def _import_file(path: Path, what: str, fix: str) -> ModuleType:
    key = str(path)
    if key in _FILES:
        return _FILES[key]
    if not path.is_file():
        raise ConfigError(f"{what} {path}: no such file; {fix}")
    if path.suffix != ".py":
        raise ConfigError(f"{what} {path}: not a .py file; pass a Python file or a dotted module name")
    stem = re.sub(r"\W", "_", path.stem)
    name, n = f"uda_user_{stem}", 1
    while name in sys.modules:
        n += 1
        name = f"uda_user_{stem}_{n}"
    module_spec = importlib.util.spec_from_file_location(name, path)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module  # dataclasses and typing look the module up while it runs
    try:
        module_spec.loader.exec_module(module)
    except UdaError:
        del sys.modules[name]
        raise
    except Exception as e:
        del sys.modules[name]
        raise UdaError(f"{what} {path}: importing it failed: {type(e).__name__}: {e}") from e
    _FILES[key] = module
    return module


def import_modules(specs: Iterable[str], *, what: str = "--import", relative_to: str | Path | None = None,
                   fix: str = "check the path") -> list[str]:
    """Import user modules in order; returns the specs as recorded (files as absolute paths, see `normalize`).

    Args:
        specs: paths to ``.py`` files or dotted module names.
        what: where they came from, for error messages.
        relative_to: the folder relative file paths start from (default: the working directory).
        fix: what the message of a missing file tells the user to do.
    """
    out: list[str] = []
    for spec in specs:
        norm = normalize(spec, relative_to)
        import_module(norm, what=what, fix=fix)
        if norm not in out:
            out.append(norm)
    return out


def load_plugins(*, force: bool = False) -> list[str]:
    """Load every installed plugin (entry points of the group ``uda.plugins``) once per process.

    An entry point ``my_plugin = my_package.uda_parts`` imports the module; ``my_plugin = my_package:setup`` also
    calls ``setup()``. Setting the environment variable ``UDA_NO_PLUGINS=1`` skips them all.

    Args:
        force: load them again even if this process already did (tests).

    Returns:
        The names of the entry points loaded.

    Raises:
        UdaError: a plugin failed to load; the message names the plugin, its distribution and the exception.
    """
    global _PLUGINS_LOADED
    if _PLUGINS_LOADED is not None and not force:
        return list(_PLUGINS_LOADED)
    if os.environ.get("UDA_NO_PLUGINS", "") not in ("", "0"):
        _PLUGINS_LOADED = []
        return []
    loaded: list[str] = []
    for ep in sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        dist = getattr(ep, "dist", None)
        origin = f" from {dist.name} {dist.version}" if dist is not None else ""
        try:
            obj = ep.load()
            if callable(obj) and not isinstance(obj, ModuleType):
                obj()
        except Exception as e:
            _PLUGINS_LOADED = loaded  # the ones that did load stay loaded; do not retry the broken one
            raise UdaError(f"plugin '{ep.name}' ({ENTRY_POINT_GROUP} entry point '{ep.value}'{origin}) failed to "
                           f"load: {type(e).__name__}: {_first_line(e)}; fix or uninstall it, or set "
                           "UDA_NO_PLUGINS=1 to run without plugins") from e
        loaded.append(ep.name)
    _PLUGINS_LOADED = loaded
    return list(loaded)


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else ""
