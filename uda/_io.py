"""Safe, atomic file input/output shared by every part of ``uda``.

- Writes go to a temporary file in the same folder, are flushed and fsynced, then renamed over the
  target, so a crash never leaves a half-written file under the final name.
- Checkpoints load with ``torch.load(weights_only=True)``: a pickle payload that would run code is refused.
- YAML is read with ``yaml.safe_load`` only.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import yaml

from ._errors import CheckpointError, ConfigError


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file next to ``path``; on success rename it over ``path``, on error delete it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the file the usual permissions
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write bytes atomically."""
    with atomic_open(path, "wb") as f:
        f.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write text (UTF-8) atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write an object as indented JSON atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


class _HashingWriter(io.RawIOBase):
    """A write-only file wrapper that feeds every byte written into a SHA-256 (no second copy in memory)."""

    def __init__(self, f: IO[bytes]) -> None:
        self.f, self.hash = f, hashlib.sha256()

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:  # type: ignore[override]
        self.hash.update(b)
        return self.f.write(b)


def save_checkpoint(obj: dict[str, Any], path: str | os.PathLike) -> str:
    """Serialize ``obj`` with ``torch.save`` straight into an atomic file, with a ``.sha256`` sidecar.

    The bytes stream to disk while they are hashed: the serialized checkpoint is never held in memory.

    Returns:
        The SHA-256 of the written bytes.
    """
    import torch

    with atomic_open(path, "wb") as f:
        w = _HashingWriter(f)
        torch.save(obj, w)
        digest = w.hash.hexdigest()
    atomic_write_text(str(path) + ".sha256", digest + "\n")
    return digest


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 22) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def link_or_copy(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Make ``dst`` an atomic copy of ``src``: a hard link where the filesystem allows, else a streamed copy."""
    import shutil

    dst = Path(dst)
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.parent)
    os.close(fd)
    os.unlink(tmp)
    try:
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(tmp, dst)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def load_checkpoint(path: str | os.PathLike, *, verify: bool = True, map_location: Any = "cpu") -> dict[str, Any]:
    """Load a checkpoint safely (``weights_only=True``), verifying its ``.sha256`` sidecar if present.

    ``.safetensors`` files are read with `safetensors` (tensors only).

    Raises:
        CheckpointError: the file is missing, truncated/corrupt, fails its checksum, or holds a pickle
            payload that is not plain weights.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file; check the path")
    if path.suffix == ".safetensors":
        try:
            from safetensors.torch import load_file

            return load_file(str(path), device=str(map_location))
        except Exception as e:
            raise CheckpointError(f"{path}: cannot read safetensors file ({e}); the file is corrupt or not safetensors") from None
    side = Path(str(path) + ".sha256")
    if verify and side.is_file():
        want = side.read_text().strip()
        if want and sha256_file(path) != want:  # streamed: the file's bytes are not held in memory twice
            raise CheckpointError(
                f"{path}: checksum mismatch (file is truncated or corrupted); use an earlier checkpoint"
            )
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if "weights_only" in str(e) or "Unsupported global" in str(e) or "Weights only load failed" in str(e):
            raise CheckpointError(
                f"{path}: refused to load, the file holds Python objects beyond plain weights "
                f"(loaded with weights_only=True for safety); re-save it as a state dict or .safetensors"
            ) from None
        raise CheckpointError(f"{path}: cannot load checkpoint ({msg}); the file is truncated or corrupt") from None


def load_yaml(path: str | os.PathLike) -> Any:
    """Read a YAML file with the safe loader; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such YAML file; check the path or use a built-in config name (uda list config)")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        what = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{path}:{where}: invalid YAML ({what}); fix the syntax there") from None


def dump_yaml(obj: Any) -> str:
    """Dump plain data to YAML text (keys in insertion order)."""
    return yaml.safe_dump(obj, sort_keys=False, default_flow_style=False, allow_unicode=True)
