"""Exceptions raised by lossatlas.

Every exception meant for users derives from :class:`LossAtlasError`. Bad input raises
:class:`InputError` (also a ``ValueError``), whose message says what was wrong and how to
fix it. The command line turns ``InputError`` into one ``error: ...`` line and exit code 2.
"""

from __future__ import annotations


class LossAtlasError(Exception):
    """Base class of every error lossatlas raises on purpose."""


class InputError(LossAtlasError, ValueError):
    """Bad input: wrong shapes or dtypes, non-finite values, impossible widths, bad files."""


class SolverError(LossAtlasError, RuntimeError):
    """A solver failed and ``throw=True`` was passed; the message is the status message."""
