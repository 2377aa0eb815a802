"""Whole safetensors files loaded from and saved into .mmh, streamed through the command."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from ._command import Run, encode_options
from ._reader import _location, fill, target_for
from ._safetensors import build_header, expected_length, read_header
from .errors import CorruptError, InternalError, MmhError

COMPRESS_OPTIONS = ("codec", "level", "goal", "chunk_size", "threads")
DECOMPRESS_OPTIONS = ("max_output", "check_sha256", "threads")

Source = Callable[[str, Any], "tuple[str, tuple[int, ...], memoryview]"]


def load(path: Any, framework: str, **options: Any) -> dict[str, Any]:
    """Every tensor of a .mmh file whose content is safetensors, decoded front to back once."""
    flags = encode_options(options, DECOMPRESS_OPTIONS)
    with Run(["decompress", _location(path), "-c", *flags], stdout=True) as run_:
        try:
            header = read_header(run_.read)
        except MmhError:
            failure = run_.failure()
            if failure is not None:
                raise failure from None
            raise
        tensors = {}
        for info in header.tensors:
            result, target = target_for(info, framework)
            fill(run_, target, info.name)
            tensors[info.name] = result
        if run_.read(1):
            raise CorruptError(f"{_location(path)}: safetensors content goes on after its last tensor")
        run_.finish()
    return tensors


def save(tensors: Mapping[str, Any], path: Any, metadata: Mapping[str, str] | None, source: Source, **options: Any) -> None:
    """A safetensors file written into the command's stdin, compressed into ``path``."""
    flags = encode_options(options, COMPRESS_OPTIONS)
    entries = []
    for name, value in tensors.items():
        dtype, shape, data = source(name, value)
        if len(data) != expected_length(dtype, shape):
            raise InternalError(f"{name}: {dtype} {list(shape)} gave {len(data)} bytes")
        entries.append((name, dtype, shape, len(data)))
    header = build_header(entries, dict(metadata) if metadata is not None else None)

    def pieces() -> Iterator[Any]:
        yield header
        for name, value in tensors.items():
            # Described again here so that at most one tensor's copy (a GPU tensor's, or a
            # strided array's) is alive at a time.
            yield source(name, value)[2]

    with Run(["compress", "-", "-o", os.fspath(path), "-f", *flags], stdin=True) as run_:
        run_.write_all(pieces())
        run_.finish()
