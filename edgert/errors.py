"""One error hierarchy, so the CLI can print every failure as ``error:`` + ``hint:``.

Messages are plain text usable from Python; colour and layout are the CLI's job. Each error
says what was wrong, the offending value, the valid choices and the next step (``hint``).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class EdgertError(Exception):
    """Base class of every error edgert raises on purpose."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\nhint: {self.hint}"


class UnknownNameError(EdgertError):
    """A name (device, decoder, provider, step, option) that nothing registered."""

    def __init__(self, kind: str, name: str, known: Iterable[str], *, hint: str | None = None):
        known = sorted(known)
        close = difflib.get_close_matches(name, known, n=1)
        message = f"unknown {kind} {name!r}\n  known {kind}s: {', '.join(known) or '(none)'}"
        suggestion = f"did you mean {close[0]!r}?" if close else None
        hint = "  ".join(part for part in (suggestion, hint) if part) or None
        super().__init__(message, hint=hint)
        self.kind, self.name, self.known = kind, name, known


class PluginError(EdgertError):
    """A plugin registered something invalid or clashing."""


class DeviceProfileError(EdgertError):
    """A device-profile TOML file is malformed or has invalid values."""


class ProviderUnavailableError(EdgertError):
    """The execution provider a profile asks for cannot run on this host."""


class ProviderFallbackError(EdgertError):
    """ONNX Runtime placed the graph on another provider than the one asked for."""


class BundleError(EdgertError):
    """A bundle is missing, tampered with, from a newer schema, or otherwise unusable."""


class ExportError(EdgertError):
    """An export step failed; ``step`` names it."""

    def __init__(self, message: str, *, step: str | None = None, hint: str | None = None):
        super().__init__(f"[{step}] {message}" if step else message, hint=hint)
        self.step = step


class ValidationMismatchError(ExportError):
    """The exported graph does not reproduce the source model within tolerance."""


class InputError(EdgertError):
    """Input given to a model at run time has the wrong shape, dtype or content."""


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` when a close match exists, else ``""``."""
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


class TargetError(EdgertError):
    """A remote profiling target could not be reached, refused us, or refused the bundle."""
