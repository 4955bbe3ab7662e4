"""Per-(seed, stream position) generators for the stream-sampling dataset wrappers."""

from __future__ import annotations

import hashlib

import torch


def stream_generator(seed: int, pos: int, salt: str = "") -> torch.Generator:
    """A CPU ``torch.Generator`` seeded from a hash of ``(seed, pos, salt)`` (no collisions between nearby pairs)."""
    digest = hashlib.blake2b(f"{int(seed)}:{int(pos)}:{salt}".encode(), digest_size=8).digest()
    g = torch.Generator()
    g.manual_seed(int.from_bytes(digest, "little") >> 1)
    return g


def epoch_index(n: int, seed: int, pos: int, salt: str, cache: dict[int, torch.Tensor]) -> int:
    """Sample index of stream position ``pos``: epoch ``pos // n`` is one permutation of ``range(n)``."""
    epoch, off = divmod(int(pos), n)
    perm = cache.get(epoch)
    if perm is None:
        perm = torch.randperm(n, generator=stream_generator(seed, epoch, salt + ":epoch"))
        cache.clear()
        cache[epoch] = perm
    return int(perm[off])
