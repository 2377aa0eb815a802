"""safetensors' ``safetensors.numpy`` API, for .mmh files: ``load_file`` and ``save_file``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import _frameworks, _tensors

__all__ = ["load_file", "save_file"]


def load_file(path: Any, **options: Any) -> dict[str, Any]:
    """Every tensor of a .mmh file holding safetensors, as numpy arrays.

    BF16 and F8 tensors come as ``ml_dtypes`` arrays when that package is installed, and
    otherwise as their bit patterns (uint16 for BF16, uint8 for F8): numpy has no such
    dtypes. Options: ``max_output``, ``check_sha256``, ``threads``.
    """
    return _tensors.load(path, "np", **options)


def save_file(tensors: Mapping[str, Any], path: Any, metadata: Mapping[str, str] | None = None, **options: Any) -> None:
    """Write ``tensors`` as a safetensors file compressed into ``path`` (replaced if it exists).

    The safetensors bytes are streamed into the mmh command; no temporary file is written.
    Options: ``codec``, ``level``, ``goal``, ``chunk_size``, ``threads``.
    """
    _tensors.save(tensors, path, metadata, _frameworks.numpy_source, **options)
