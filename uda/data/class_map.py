"""Custom class maps: a small YAML that maps the ids stored in a dataset's label files to a chosen class set.

```yaml
classes: cityscapes          # or the model's class names, in trainId order: [road, car, person]
ids: {0: ignore, 1: road, 2: car, 7: road}
```

Every check runs when the file is loaded and fails with one line naming the file, the entry and the fix; an id
in a label file that the map does not list raises a [`DataError`][uda.DataError] naming the label file and the id
(never a silent mapping). Any file dataset takes one with ``class_map=PATH``; see docs/datasets.md.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .._errors import DataError
from ..labels import CITYSCAPES_CLASSES, IGNORE_INDEX
from ._decode import LabelMap

CLASS_SETS: dict[str, tuple[str, ...]] = {"cityscapes": CITYSCAPES_CLASSES}
"""Named class sets ``classes:`` may refer to."""

_IGNORE = ("ignore", IGNORE_INDEX)
_KEYS = ("classes", "ids")


@dataclass(frozen=True)
class ClassMap:
    """A loaded class map.

    Attributes:
        classes: the class names, in trainId order (index = the trainId a model predicts).
        label_map: the stored id → trainId table (ids mapped to ``ignore`` → 255; ids not listed are errors).
        path: the file it came from.
    """

    classes: tuple[str, ...]
    label_map: LabelMap
    path: Path

    @property
    def num_classes(self) -> int:
        """``len(classes)``."""
        return len(self.classes)


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice (PyYAML keeps the last one silently)."""


def _unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise DataError(f"key {key!r} is given twice (line {key_node.start_mark.line + 1}); keep one")
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


def is_class_map(data: Any) -> bool:
    """Whether parsed YAML/JSON looks like a class map (has an ``ids`` key) rather than an ``id: trainId`` table."""
    return isinstance(data, dict) and "ids" in data


def read_yaml_unique(path: Path) -> Any:
    """Parse a YAML (or JSON) file with duplicate keys refused; errors name the file."""
    try:
        # yaml.safe_load with one more check: _UniqueKeyLoader is a SafeLoader (no object construction)
        return yaml.load(path.read_text(), Loader=_UniqueKeyLoader)
    except DataError as e:
        raise DataError(f"class map {path}: {e}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DataError(f"class map {path}: cannot parse ({first}); write YAML like 'ids: {{1: road}}'") from None


def _suggest(name: str, choices: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(name, choices, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def parse_class_map(data: Any, path: str | Path, *, num_classes: int | None = None) -> ClassMap:
    """Check parsed class-map data and build the `ClassMap` (see `load_class_map`)."""
    path = Path(path)
    where = f"class map {path}"
    if not isinstance(data, dict):
        raise DataError(f"{where}: expected a mapping with 'classes' and 'ids', got {type(data).__name__}")
    unknown = sorted(str(k) for k in data if k not in _KEYS)
    if unknown:
        raise DataError(f"{where}: unknown key '{unknown[0]}'; a class map has only 'classes' and 'ids'")
    spec = data.get("classes", "cityscapes")
    if isinstance(spec, str):
        if spec not in CLASS_SETS:
            raise DataError(f"{where}: classes: '{spec}' is not a known class set ({', '.join(CLASS_SETS)}); "
                            "or list the class names")
        classes = CLASS_SETS[spec]
    elif isinstance(spec, list) and spec:
        for c in spec:
            if not isinstance(c, str) or not c.strip():
                raise DataError(f"{where}: classes: {c!r} is not a class name; write the names as strings")
            if c == "ignore":
                raise DataError(f"{where}: classes: 'ignore' is reserved for ids to leave out; rename the class")
        dup = next((c for i, c in enumerate(spec) if c in spec[:i]), None)
        if dup is not None:
            raise DataError(f"{where}: classes: '{dup}' is listed twice; each class once, in trainId order")
        if len(spec) >= IGNORE_INDEX:
            raise DataError(f"{where}: classes: {len(spec)} classes; at most {IGNORE_INDEX - 1} fit (255 = ignore)")
        classes = tuple(spec)
    else:
        raise DataError(f"{where}: classes must be a class set name (cityscapes) or a non-empty list of names")
    if num_classes is not None and len(classes) != num_classes:
        raise DataError(f"{where}: classes has {len(classes)} classes but the model predicts {num_classes} "
                        "(model.num_classes); list exactly the model's classes")
    ids = data.get("ids")
    if not isinstance(ids, dict) or not ids:
        raise DataError(f"{where}: 'ids' must be a non-empty mapping of stored id: class name (or ignore)")
    index = {c: i for i, c in enumerate(classes)}
    mapping: dict[int, int] = {}
    for key, value in ids.items():
        if isinstance(key, str) and key.strip().isdigit():  # JSON keys are strings
            key = int(key)
        if isinstance(key, bool) or not isinstance(key, int):
            raise DataError(f"{where}: id {key!r} is not an integer; keys are the ids stored in the label files")
        if not 0 <= key < 65536:
            raise DataError(f"{where}: id {key} is out of range; label ids are 0..65535")
        if value in _IGNORE and not isinstance(value, bool):
            mapping[key] = IGNORE_INDEX
        elif isinstance(value, str) and value in index:
            mapping[key] = index[value]
        elif isinstance(value, str):
            raise DataError(f"{where}: id {key}: '{value}' is not a class{_suggest(value, tuple(index))}; "
                            f"use one of the {len(classes)} classes or ignore")
        else:
            raise DataError(f"{where}: id {key}: {value!r} is not a class name; write the name (or ignore)")
    return ClassMap(classes, LabelMap(f"ids listed in {path}", mapping, frozenset(mapping)), path)


def load_class_map(path: str | Path, *, num_classes: int | None = None) -> ClassMap:
    """Read and check a class-map YAML file.

    Args:
        path: the file: ``classes:`` (``cityscapes`` or a list of names in trainId order; default ``cityscapes``)
            and ``ids:`` (stored id → class name or ``ignore``).
        num_classes: the model's number of classes, when known: ``classes`` must have exactly as many.

    Returns:
        The `ClassMap`.

    Raises:
        DataError: one line naming the file and the problem: a missing or unparsable file, an unknown key, a
            class listed twice, a class-count mismatch, a non-integer or out-of-range id, an id given twice, a
            value that is not a class.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "map.yaml"
        >>> _ = p.write_text("classes: [road, car]\\nids: {0: ignore, 1: road, 7: road, 2: car}\\n")
        >>> m = load_class_map(p)
        >>> m.classes, sorted(m.label_map.mapping.items())
        (('road', 'car'), [(0, 255), (1, 0), (2, 1), (7, 0)])
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"class map {path} does not exist; write a YAML file with 'classes:' and 'ids:' "
                        "(see docs/datasets.md)")
    return parse_class_map(read_yaml_unique(path), path, num_classes=num_classes)


__all__ = ["CLASS_SETS", "ClassMap", "is_class_map", "load_class_map", "parse_class_map"]
