"""MMH for Python: lossless compression for AI/ML data, through the ``mmh`` command.

Every call runs the command (``MMH_BIN``, or ``mmh`` on PATH) and streams data through
its standard input and output, so memory stays small whatever the size::

    import mmh
    packed = mmh.compress(data, codec="zstd", level=19)
    assert mmh.decompress(packed) == data
    mmh.compress_file("model.safetensors", "model.safetensors.mmh")
    with mmh.open("model.safetensors.mmh") as f:
        weight = f.get_tensor("lm_head.weight")   # decodes only that tensor's chunks
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import IO, Any

from . import numpy, torch  # noqa: F401 - mmh.numpy and mmh.torch (torch is imported when used)
from ._command import PIECE, Run, copy_out, encode_options, run
from ._reader import MmhFile, _location
from ._tensors import COMPRESS_OPTIONS, DECOMPRESS_OPTIONS
from .errors import (
    AbortedError,
    BadOptionError,
    BaseMismatchError,
    ChecksumError,
    CommandNotFoundError,
    CorruptError,
    ExistsError,
    InternalError,
    LimitError,
    MmhError,
    MmhFileNotFoundError,
    MmhIOError,
    NotFoundError,
    TruncatedError,
    UnsafePathError,
    UnsupportedError,
    UsageError,
)

__version__ = "0.2.0"

__all__ = [
    "compress",
    "decompress",
    "compress_file",
    "decompress_file",
    "open",
    "analyze",
    "info",
    "MmhFile",
    "MmhError",
    "AbortedError",
    "BadOptionError",
    "BaseMismatchError",
    "ChecksumError",
    "CommandNotFoundError",
    "CorruptError",
    "ExistsError",
    "InternalError",
    "LimitError",
    "MmhFileNotFoundError",
    "MmhIOError",
    "NotFoundError",
    "TruncatedError",
    "UnsafePathError",
    "UnsupportedError",
    "UsageError",
]

PathLike = str | bytes | os.PathLike


def _is_path(value: Any) -> bool:
    return isinstance(value, (str, bytes, os.PathLike))


def _pieces(source: IO[bytes]) -> Iterator[bytes]:
    while piece := source.read(PIECE):
        yield piece


def compress(data: bytes | bytearray | memoryview, **options: Any) -> bytes:
    """``data`` compressed into a .mmh stream.

    Options (the command's flags): ``codec`` (auto, hier, zstd, lz4, brotli, p251, none),
    ``level``, ``goal`` (ratio, balanced, speed), ``chunk_size`` (bytes, or "512K"),
    ``threads``.
    """
    return run(["compress", "-c", *encode_options(options, COMPRESS_OPTIONS)], memoryview(data))


def decompress(data: bytes | bytearray | memoryview, **options: Any) -> bytes:
    """The content of a .mmh stream, every chunk's CRC-32 checked.

    Options: ``max_output`` (refuse to produce more bytes), ``check_sha256`` (also check
    the content's SHA-256), ``threads``.
    """
    return run(["decompress", "-c", *encode_options(options, DECOMPRESS_OPTIONS)], memoryview(data))


def _file_run(command: str, src: Any, dst: Any, flags: list[str]) -> None:
    args = [command, _location(src) if _is_path(src) else "-"]
    args += ["-o", os.fspath(dst), "-f"] if _is_path(dst) else ["-c"]
    with Run(args + flags, stdin=not _is_path(src), stdout=not _is_path(dst)) as run_:
        if not _is_path(src):
            if _is_path(dst):
                run_.write_all(_pieces(src))
            else:
                run_.feed(_pieces(src))
        if not _is_path(dst):
            copy_out(run_, dst)
        run_.finish()


def compress_file(src: PathLike | IO[bytes], dst: PathLike | IO[bytes], **options: Any) -> None:
    """Compress ``src`` into ``dst``; either may be a path or a binary file object.

    From a path, the command reads the file itself and recognises its format (safetensors,
    GGUF, ...), so chunks follow its tensors and ``mmh.open`` finds them. A path ``dst`` is
    written atomically and replaced if it exists. Options as for ``compress``.
    """
    _file_run("compress", src, dst, encode_options(options, COMPRESS_OPTIONS))


def decompress_file(src: PathLike | IO[bytes], dst: PathLike | IO[bytes], **options: Any) -> None:
    """Decompress ``src`` (a path, a URL the command reads, or a binary file object) into
    ``dst`` (a path, replaced if it exists, or a binary file object). Options as for
    ``decompress``."""
    _file_run("decompress", src, dst, encode_options(options, DECOMPRESS_OPTIONS))


def open(path: PathLike, framework: str | None = None, device: str = "cpu", file: str | None = None) -> MmhFile:  # noqa: A001
    """A .mmh file (or a URL, passed to the command unchanged) opened for reading tensors.

    ``framework``: "np" (numpy arrays, the default when numpy is installed), "pt" (torch
    tensors, moved to ``device``) or "raw" (bytes). ``file``: in a folder archive, the
    file whose tensors to read.
    """
    return MmhFile(path, framework=framework, device=device, file=file)


def info(path: PathLike) -> dict[str, Any]:
    """``mmh info --json``: sizes, ratio, codecs, chunks, tensors and the content's sha256."""
    return json.loads(run(["info", _location(path), "--json"]))


def analyze(path: PathLike, **options: Any) -> dict[str, Any]:
    """``mmh analyze --json``: per tensor or region, dtype, field entropies, each codec's
    ratio on samples and what auto chooses. Options: ``codec``, ``level``, ``goal``,
    ``chunk_size``."""
    flags = encode_options(options, ("codec", "level", "goal", "chunk_size"))
    return json.loads(run(["analyze", _location(path), "--json", *flags]))
