"""safetensors' ``safetensors.torch`` API, for .mmh files: ``load_file`` and ``save_file``.

Every safetensors dtype this torch has round-trips bit for bit (BF16 and the F8 types
through ``Tensor.view``, never through a float conversion).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import _frameworks, _tensors

__all__ = ["load_file", "save_file", "dtypes"]


def load_file(path: Any, device: str = "cpu", **options: Any) -> dict[str, Any]:
    """Every tensor of a .mmh file holding safetensors, as torch tensors on ``device``.

    Options: ``max_output``, ``check_sha256``, ``threads``.
    """
    tensors = _tensors.load(path, "pt", **options)
    if str(device) != "cpu":
        tensors = {name: t.to(device) for name, t in tensors.items()}
    return tensors


def save_file(tensors: Mapping[str, Any], path: Any, metadata: Mapping[str, str] | None = None, **options: Any) -> None:
    """Write ``tensors`` as a safetensors file compressed into ``path`` (replaced if it exists).

    Options: ``codec``, ``level``, ``goal``, ``chunk_size``, ``threads``.
    """
    _tensors.save(tensors, path, metadata, _frameworks.torch_source, **options)


def dtypes() -> dict[str, Any]:
    """The safetensors dtypes this torch has, each with its ``torch.dtype``."""
    return _frameworks.torch_dtypes()
