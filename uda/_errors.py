"""Error types shared by the library and the command line.

A `UdaError` is a *user* error: bad input, a missing file, a misspelt name. Its message is one line
that names the thing and the fix. The CLI prints it without a traceback and exits with code 2.
"""

from __future__ import annotations


class UdaError(Exception):
    """A user error: one clear line that names the problem and the fix (CLI exit code 2)."""


class ConfigError(UdaError, ValueError):
    """An experiment config is wrong: unknown key, wrong type, bad value."""


class DataError(UdaError):
    """A dataset file or folder is missing, unreadable or inconsistent."""


class CheckpointError(UdaError):
    """A checkpoint or weights file is missing, corrupt, untrusted or does not fit the model."""


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN/Inf loss; the message names the iteration, the loss and the last good checkpoint."""
