"""The errors the mmh command reports, as Python exceptions.

The command prints every failure as one line, ``mmh: E_CODE: message``; each code maps
to one class here, and every class keeps the code in ``.code``. Match on the class or on
``.code``, never on the message: codes are stable across releases.
"""

from __future__ import annotations

import re

__all__ = [
    "MmhError",
    "CorruptError",
    "ChecksumError",
    "TruncatedError",
    "UnsupportedError",
    "BadOptionError",
    "LimitError",
    "MmhIOError",
    "MmhFileNotFoundError",
    "ExistsError",
    "UnsafePathError",
    "NotFoundError",
    "UsageError",
    "AbortedError",
    "InternalError",
    "CommandNotFoundError",
    "from_stderr",
]


class MmhError(Exception):
    """Any failure of mmh; ``code`` is the command's error code (``"E_CORRUPT"``, ...)."""

    code = "E_INTERNAL"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class CorruptError(MmhError):
    """The data is not a valid .mmh stream (bad magic, bad record, impossible field)."""

    code = "E_CORRUPT"


class ChecksumError(MmhError):
    """A chunk's CRC-32 or the content's SHA-256 did not match."""

    code = "E_CHECKSUM"


class TruncatedError(MmhError):
    """The data ended before the structure it declares."""

    code = "E_TRUNCATED"


class UnsupportedError(MmhError):
    """A version, flag, codec or dtype this build does not know."""

    code = "E_UNSUPPORTED"


class BadOptionError(MmhError, ValueError):
    """An option passed by the caller is invalid."""

    code = "E_BAD_OPTION"


class LimitError(MmhError):
    """A declared or produced size is over a limit (the caller's or the format's)."""

    code = "E_LIMIT"


class MmhIOError(MmhError, OSError):
    """Reading or writing a file or stream failed."""

    code = "E_IO"


class MmhFileNotFoundError(MmhIOError, FileNotFoundError):
    """An input file does not exist (code ``E_IO``, as the command reports it)."""


class ExistsError(MmhError, FileExistsError):
    """The output exists and overwriting was not allowed."""

    code = "E_EXISTS"


class UnsafePathError(MmhError):
    """A folder archive's path or link could write outside the target folder."""

    code = "E_UNSAFE_PATH"


class NotFoundError(MmhError, LookupError):
    """A tensor, file or range asked for is not in the data."""

    code = "E_NOT_FOUND"


class BaseMismatchError(MmhError):
    """The base model given is not the one the file was compressed against."""

    code = "E_BASE_MISMATCH"


class UsageError(MmhError):
    """The command line was wrong (a bug in this package or an old mmh command)."""

    code = "E_USAGE"


class AbortedError(MmhError):
    """The command was interrupted (a signal)."""

    code = "E_ABORTED"


class InternalError(MmhError):
    """A bug in mmh: an invariant did not hold, or the command failed without a code."""

    code = "E_INTERNAL"


class CommandNotFoundError(MmhError, FileNotFoundError):
    """The mmh command is not installed, or ``MMH_BIN`` names a program that does not exist.

    The code, ``E_NO_COMMAND``, is this package's own: the command cannot report it.
    """

    code = "E_NO_COMMAND"


_BY_CODE: dict[str, type[MmhError]] = {
    cls.code: cls
    for cls in (
        CorruptError,
        ChecksumError,
        TruncatedError,
        UnsupportedError,
        BadOptionError,
        LimitError,
        MmhIOError,
        ExistsError,
        UnsafePathError,
        NotFoundError,
        BaseMismatchError,
        UsageError,
        AbortedError,
        InternalError,
    )
}

_LINE = re.compile(r"^mmh: (E_[A-Z0-9_]+): (.*)$")


def error_for(code: str, message: str) -> MmhError:
    """The exception for a code the command printed (unknown codes give a plain MmhError)."""
    cls = _BY_CODE.get(code, MmhError)
    if cls is MmhIOError and message.endswith("(ENOENT)"):
        cls = MmhFileNotFoundError
    return cls(message, code)


def from_stderr(stderr: str, returncode: int) -> MmhError:
    """The exception for a failed run: the last ``mmh: E_CODE: message`` line of its stderr."""
    for line in reversed(stderr.splitlines()):
        match = _LINE.match(line.strip())
        if match:
            return error_for(match.group(1), match.group(2))
    if returncode in (-2, -15, 130, 143):
        return AbortedError(f"the mmh command was interrupted (exit status {returncode})")
    tail = stderr.strip().splitlines()[-1] if stderr.strip() else "nothing on stderr"
    return InternalError(f"the mmh command failed with exit status {returncode}: {tail}")
