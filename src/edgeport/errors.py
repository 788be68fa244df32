"""Typed errors: each carries one line that tells the user what was wrong and what to do.

Internal bugs stay plain exceptions; everything a user can cause is an ``EdgeportError`` and the CLI
turns it into that one line and exit code 2 (bad usage or input) or 1 (an artifact failed).
"""

from __future__ import annotations


class EdgeportError(Exception):
    """Base class for errors a user can act on."""

    exit_code = 2


class ConfigError(EdgeportError):
    """Options that contradict each other or are out of range."""


class SourceError(EdgeportError):
    """A model source that is missing, unreadable, unsafe or not what it claims to be."""


class UnsupportedFormatError(EdgeportError):
    """A format name that is not registered, or one that does not apply to this source."""


class MissingDependencyError(EdgeportError):
    """An optional package needed for this step is not installed."""

    def __init__(self, package: str, purpose: str, extra: str | None = None):
        hint = f"pip install 'edgeport[{extra}]'" if extra else f"pip install {package}"
        super().__init__(f"{purpose} needs the package '{package}', which is not installed: {hint}")
        self.package = package


class ConversionError(EdgeportError):
    """A converter failed on this model."""

    exit_code = 1


class ValidationError(EdgeportError):
    """An artifact did not agree with its reference within the gate."""

    exit_code = 1


class DataError(EdgeportError):
    """A data folder that is empty, unlabeled or holds nothing readable."""
