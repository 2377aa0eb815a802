"""The safetensors layout, read and written as a stream.

A safetensors file is an 8-byte little-endian header length N, N bytes of JSON (each
tensor's dtype, shape and [begin, end) in the data that follows, and an optional
``__metadata__`` of strings), then the data. Reading follows the order safetensors
checks; writing pads the header with spaces to a multiple of 8, as safetensors does.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from math import prod

from .errors import CorruptError, UnsupportedError

MAX_HEADER = 100_000_000
"""safetensors refuses larger headers; so does this reader."""

BITS = {
    "F64": 64,
    "F32": 32,
    "F16": 16,
    "BF16": 16,
    "F8_E4M3": 8,
    "F8_E5M2": 8,
    "F8_E8M0": 8,
    "F6_E2M3": 6,
    "F6_E3M2": 6,
    "F4": 4,
    "I64": 64,
    "I32": 32,
    "I16": 16,
    "I8": 8,
    "I4": 4,
    "U64": 64,
    "U32": 32,
    "U16": 16,
    "U8": 8,
    "U4": 4,
    "BOOL": 8,
    "C64": 64,
}


@dataclass(frozen=True)
class TensorInfo:
    """One tensor: its dtype, shape, and where its bytes are in the content."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    offset: int
    length: int
    file: str | None = None


def expected_length(dtype: str, shape: tuple[int, ...]) -> int | None:
    bits = BITS.get(dtype)
    if bits is None:
        return None
    total = prod(shape) * bits
    return (total + 7) // 8


@dataclass
class Header:
    tensors: list[TensorInfo]
    metadata: dict[str, str] | None
    data_offset: int


def parse_header(prefix: bytes, body: bytes) -> Header:
    """Check and read a header: ``prefix`` is the 8 length bytes, ``body`` the JSON."""
    (length,) = struct.unpack("<Q", prefix)
    if len(body) != length:
        raise CorruptError(f"safetensors: header of {length} bytes ends after {len(body)}")
    try:
        header = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise CorruptError(f"safetensors: the header is not JSON: {error}") from None
    if not isinstance(header, dict):
        raise CorruptError("safetensors: the header is not a JSON object")
    metadata = header.pop("__metadata__", None)
    if metadata is not None and (
        not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values())
    ):
        raise CorruptError("safetensors: __metadata__ is not a map of strings")
    data_offset = 8 + length
    tensors = []
    for name, entry in header.items():
        try:
            dtype = entry["dtype"]
            shape = tuple(int(d) for d in entry["shape"])
            begin, end = (int(x) for x in entry["data_offsets"])
        except (TypeError, KeyError, ValueError):
            raise CorruptError(f"safetensors: tensor {name!r} has no valid dtype, shape and data_offsets") from None
        if begin < 0 or end < begin or any(d < 0 for d in shape):
            raise CorruptError(f"safetensors: tensor {name!r} has impossible offsets or shape")
        expected = expected_length(dtype, shape)
        if expected is None:
            raise UnsupportedError(f"safetensors: tensor {name!r} has an unknown dtype {dtype!r}")
        if expected != end - begin:
            raise CorruptError(f"safetensors: tensor {name!r}: {dtype} {list(shape)} needs {expected} bytes, not {end - begin}")
        tensors.append(TensorInfo(name, dtype, shape, data_offset + begin, end - begin))
    tensors.sort(key=lambda t: t.offset)
    cursor = data_offset
    for t in tensors:
        if t.offset != cursor:
            raise CorruptError(f"safetensors: tensor {t.name!r} does not start where the one before ends")
        cursor += t.length
    return Header(tensors, metadata, data_offset)


class NotSafetensors(UnsupportedError):
    """The content does not start with a safetensors header."""


def read_header(read) -> Header:
    """The header from a stream's start; ``read(n)`` returns up to n bytes."""
    prefix = read(8)
    if len(prefix) < 8:
        raise NotSafetensors("the content is not safetensors: it is shorter than 8 bytes")
    (length,) = struct.unpack("<Q", prefix)
    if length > MAX_HEADER:
        raise NotSafetensors(f"the content is not safetensors: a header of {length} bytes would be over the limit of {MAX_HEADER}")
    body = read(length)
    if len(body) < length or not body.lstrip(b" ").startswith(b"{"):
        raise NotSafetensors("the content is not safetensors: no JSON header at its start")
    return parse_header(prefix, body)


def build_header(entries: Iterable[tuple[str, str, tuple[int, ...], int]], metadata: dict[str, str] | None) -> bytes:
    """The 8 length bytes and the JSON for tensors given as (name, dtype, shape, nbytes),
    laid out in that order."""
    header: dict[str, object] = {}
    if metadata is not None:
        if not isinstance(metadata, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
        ):
            raise TypeError("metadata must be a dict of str to str")
        header["__metadata__"] = metadata
    offset = 0
    for name, dtype, shape, nbytes in entries:
        if not isinstance(name, str) or name == "__metadata__":
            raise TypeError(f"tensor names must be strings other than __metadata__, got {name!r}")
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    body = json.dumps(header, separators=(",", ":")).encode("utf-8")
    body += b" " * (-len(body) % 8)
    return struct.pack("<Q", len(body)) + body


def stream(header: bytes, pieces: Iterable[memoryview]) -> Iterator[memoryview | bytes]:
    yield header
    yield from pieces
