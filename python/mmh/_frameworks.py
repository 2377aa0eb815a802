"""Tensors of numpy and torch, made from and turned into safetensors bytes.

Loading allocates the final array first and lets the caller read the bytes straight into
it, so a tensor is held once. Dtypes numpy lacks (BF16, the F8 types) come back as
``ml_dtypes`` arrays when that package is installed, and otherwise as their bit patterns
(uint16 for BF16, uint8 for F8); torch gets every dtype it has, exactly, through
``Tensor.view(dtype)``.
"""

from __future__ import annotations

from math import prod
from typing import Any

from ._safetensors import BITS, TensorInfo
from .errors import UnsupportedError

try:
    import numpy as np
except ImportError:  # pragma: no cover - exercised only without numpy
    np = None  # type: ignore[assignment]

_NUMPY_DTYPES = {
    "F64": "<f8",
    "F32": "<f4",
    "F16": "<f2",
    "I64": "<i8",
    "I32": "<i4",
    "I16": "<i2",
    "I8": "i1",
    "U64": "<u8",
    "U32": "<u4",
    "U16": "<u2",
    "U8": "u1",
    "BOOL": "?",
    "C64": "<c8",
}
# Dtypes numpy has no type for: ml_dtypes' name for each, and the bit pattern otherwise.
_NUMPY_EXTENDED = {
    "BF16": ("bfloat16", "<u2"),
    "F8_E4M3": ("float8_e4m3fn", "u1"),
    "F8_E5M2": ("float8_e5m2", "u1"),
    "F8_E8M0": ("float8_e8m0fnu", "u1"),
}
_SAFETENSORS_OF_NUMPY = {
    "float64": "F64",
    "float32": "F32",
    "float16": "F16",
    "int64": "I64",
    "int32": "I32",
    "int16": "I16",
    "int8": "I8",
    "uint64": "U64",
    "uint32": "U32",
    "uint16": "U16",
    "uint8": "U8",
    "bool": "BOOL",
    "complex64": "C64",
    "bfloat16": "BF16",
    "float8_e4m3fn": "F8_E4M3",
    "float8_e5m2": "F8_E5M2",
    "float8_e8m0fnu": "F8_E8M0",
}

_TORCH_NAMES = {
    "F64": "float64",
    "F32": "float32",
    "F16": "float16",
    "BF16": "bfloat16",
    "F8_E4M3": "float8_e4m3fn",
    "F8_E5M2": "float8_e5m2",
    "F8_E8M0": "float8_e8m0fnu",
    "I64": "int64",
    "I32": "int32",
    "I16": "int16",
    "I8": "int8",
    "U64": "uint64",
    "U32": "uint32",
    "U16": "uint16",
    "U8": "uint8",
    "BOOL": "bool",
    "C64": "complex64",
}


def numpy_dtype(dtype: str) -> Any:
    if dtype in _NUMPY_DTYPES:
        return np.dtype(_NUMPY_DTYPES[dtype])
    if dtype in _NUMPY_EXTENDED:
        name, bits = _NUMPY_EXTENDED[dtype]
        try:
            import ml_dtypes

            return np.dtype(getattr(ml_dtypes, name))
        except (ImportError, AttributeError):
            return np.dtype(bits)
    return None


def numpy_target(info: TensorInfo) -> tuple[Any, memoryview]:
    """An uninitialised array for ``info`` and a writable view of its bytes.

    Sub-byte dtypes (F4, F6, I4, U4) have no element type: they come as their packed bytes,
    a flat uint8 array."""
    dtype = numpy_dtype(info.dtype)
    if dtype is None or BITS[info.dtype] % 8:
        flat = np.empty(info.length, np.uint8)
        return flat, memoryview(flat)
    flat = np.empty(prod(info.shape), dtype)
    return flat.reshape(info.shape), memoryview(flat.view(np.uint8))


def numpy_source(name: str, value: Any) -> tuple[str, tuple[int, ...], memoryview]:
    """(safetensors dtype, shape, little-endian bytes) of an array."""
    array = np.asarray(value)
    st = _SAFETENSORS_OF_NUMPY.get(array.dtype.name)
    if st is None:
        raise UnsupportedError(f"{name}: numpy dtype {array.dtype} has no safetensors dtype")
    if array.dtype.byteorder == ">":
        array = array.astype(array.dtype.newbyteorder("<"))
    flat = np.ascontiguousarray(array.reshape(-1))
    return st, tuple(array.shape), memoryview(flat.view(np.uint8))


def torch_dtype(dtype: str) -> Any:
    import torch

    name = _TORCH_NAMES.get(dtype)
    found = getattr(torch, name, None) if name else None
    if not isinstance(found, torch.dtype):
        raise UnsupportedError(f"{dtype} has no dtype in torch {torch.__version__}")
    return found


def torch_dtypes() -> dict[str, Any]:
    """Every safetensors dtype this torch has."""
    import torch

    found = {}
    for st, name in _TORCH_NAMES.items():
        value = getattr(torch, name, None)
        if isinstance(value, torch.dtype):
            found[st] = value
    return found


def torch_target(info: TensorInfo) -> tuple[Any, memoryview]:
    """An uninitialised CPU tensor for ``info`` and a writable view of its bytes."""
    import torch

    flat = torch.empty(prod(info.shape), dtype=torch_dtype(info.dtype))
    return flat.reshape(info.shape), memoryview(flat.view(torch.uint8).numpy())


def torch_source(name: str, value: Any) -> tuple[str, tuple[int, ...], memoryview]:
    """(safetensors dtype, shape, little-endian bytes) of a tensor, exact for every dtype."""
    import torch

    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(value).__name__}")
    st = next((k for k, v in torch_dtypes().items() if v == value.dtype), None)
    if st is None:
        raise UnsupportedError(f"{name}: torch dtype {value.dtype} has no safetensors dtype")
    flat = value.detach().to("cpu").contiguous().reshape(-1)
    return st, tuple(value.shape), memoryview(flat.view(torch.uint8).numpy())
