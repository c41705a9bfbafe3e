"""The project's exception types: each kind of failure a user can cause, one class.

The command-line tools catch these (and the OS's own ``OSError``) and print one line,
``error: <message>``; the message always names the file, key or value and what was expected.

Example:
    >>> from pyanomaly.errors import ConfigError
    >>> raise ConfigError("config key 'TRAIN.LR' must be > 0, got -1.0")
"""
from __future__ import annotations

__all__ = ["PyAnomalyError", "ConfigError", "DatasetError", "ScoreFileError", "CheckpointError", "RegistryError",
           "NonFiniteLossError", "ExportError", "KNOWN_ERRORS"]


class PyAnomalyError(Exception):
    """Base of the errors below (each also derives from the builtin it refines)."""


class ConfigError(PyAnomalyError, ValueError):
    """A config file, key or value that cannot be used; the message names it."""


class DatasetError(PyAnomalyError, ValueError):
    """Data that cannot be used as it is; the message names the file or video and the numbers."""


class ScoreFileError(DatasetError):
    """An exported score file (CSV, JSON, ``index.json``, ``.npy``) that is damaged, truncated or
    inconsistent; the message names the file, the line or row, the video and frame, and the value."""


class CheckpointError(PyAnomalyError, RuntimeError):
    """A checkpoint that is missing, unreadable or made for another model."""


class RegistryError(PyAnomalyError, KeyError):
    """An unknown name, or arguments a registered class does not take."""

    def __str__(self) -> str:  # KeyError would print the message in quotes
        return str(self.args[0])


class NonFiniteLossError(PyAnomalyError, FloatingPointError):
    """Training produced NaN or Inf."""


class ExportError(PyAnomalyError, ValueError):
    """A method or setting that cannot be exported (or whose export does not match PyTorch); the
    message names the method, the part and why."""


#: what the tools report as one ``error:`` line instead of a traceback
KNOWN_ERRORS = (PyAnomalyError, FileNotFoundError, ModuleNotFoundError, PermissionError, OSError, ValueError)
