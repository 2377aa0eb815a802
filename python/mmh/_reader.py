"""``mmh.open``: tensors read one at a time from a .mmh file, like ``safetensors.safe_open``."""

from __future__ import annotations

import json
import os
from typing import Any

from . import _frameworks
from ._command import Run, run
from ._safetensors import Header, NotSafetensors, TensorInfo, read_header
from .errors import BadOptionError, CorruptError, MmhError, NotFoundError, TruncatedError

_FRAMEWORKS = {"np": "np", "numpy": "np", "pt": "pt", "torch": "pt", "raw": "raw", "bytes": "raw"}


def _location(path: Any) -> str:
    # A URL (or anything else the command accepts) goes through unchanged.
    return os.fspath(path) if isinstance(path, os.PathLike) else str(path)


def is_url(location: str) -> bool:
    """Whether the command reads ``location`` over HTTP (range requests), not as a path."""
    return location[:8].lower().startswith(("http://", "https://"))


def default_framework() -> str:
    return "np" if _frameworks.np is not None else "raw"


def fill(run_: Run, target: memoryview, what: str) -> None:
    """Read exactly ``len(target)`` bytes of the command's output into ``target``."""
    count = run_.readinto(target)
    if count < len(target):
        raise run_.failure() or TruncatedError(f"{what}: the output ended after {count} of {len(target)} bytes")


def target_for(info: TensorInfo, framework: str) -> tuple[Any, memoryview]:
    if framework == "np":
        return _frameworks.numpy_target(info)
    if framework == "pt":
        return _frameworks.torch_target(info)
    buffer = bytearray(info.length)
    return buffer, memoryview(buffer)


class MmhFile:
    """An open .mmh file (or URL): its tensors by name, each decoded on its own.

    ``mmh info --json`` runs once, when it opens; each ``get_tensor`` runs
    ``mmh extract --tensor NAME -c``, which decodes only that tensor's chunks. A file
    written from a stream (``mmh.numpy.save_file``, ``compress`` of bytes) has no tensor
    table: for safetensors content its header is read from the content's start instead,
    and a tensor is read by decoding the content up to its end.
    """

    def __init__(self, path: Any, framework: str | None = None, device: str = "cpu", file: str | None = None):
        if framework is not None and framework not in _FRAMEWORKS:
            raise BadOptionError(f"framework must be one of {', '.join(_FRAMEWORKS)}, got {framework!r}")
        self.path = _location(path)
        self.framework = _FRAMEWORKS[framework] if framework else default_framework()
        self.device = device
        self.file = file
        self.info: dict[str, Any] = json.loads(run(["info", self.path, "--json"]))
        self._streamed: Header | None = None
        tensors = [t for t in self.info.get("tensors", []) if file is None or t.get("file") == file]
        self._tensors = {
            t["name"]: TensorInfo(t["name"], t["dtype"], tuple(t["shape"]), t["offset"], t["length"], t.get("file"))
            for t in tensors
        }
        self._metadata: dict[str, str] | None = None
        self._metadata_read = False
        if not self._tensors and self.info.get("format") == "raw" and self.info.get("rawBytes", 0) >= 8:
            self._streamed = self._content_header()
            if self._streamed is not None:
                self._tensors = {t.name: t for t in self._streamed.tensors}
                self._metadata, self._metadata_read = self._streamed.metadata, True

    def _content_header(self) -> Header | None:
        """The safetensors header at the content's start, or None if it is not safetensors."""
        if is_url(self.path):
            # The command decompresses no URL; it extracts content ranges from one.
            # The header is most often well under 64 KiB: one run reads it, whatever it is.
            size = int(self.info.get("rawBytes", 0))
            held = bytearray()
            position = 0

            def read(count: int) -> bytes:
                nonlocal position
                end = min(position + count, size)
                if end > len(held):
                    length = min(max(end, len(held) + 65536), size) - len(held)
                    held.extend(run(["extract", self.path, "--range", f"{len(held)}:{length}", "-c"]))
                data = bytes(held[position:end])
                position += len(data)
                return data

            try:
                return read_header(read)
            except NotSafetensors:
                return None
        with Run(["decompress", self.path, "-c"], stdout=True) as run_:
            try:
                return read_header(run_.read)
            except MmhError as error:
                failure = run_.failure()
                if failure is not None:
                    raise failure from None
                if isinstance(error, NotSafetensors):
                    return None
                raise

    def keys(self) -> list[str]:
        """The tensors' names, in the order the file stores them."""
        return list(self._tensors)

    def __iter__(self):
        return iter(self._tensors)

    def __len__(self) -> int:
        return len(self._tensors)

    def __contains__(self, name: object) -> bool:
        return name in self._tensors

    def tensor_info(self, name: str) -> TensorInfo:
        """dtype, shape, and where the tensor's bytes are in the content."""
        try:
            return self._tensors[name]
        except KeyError:
            raise NotFoundError(f'no tensor named "{name}" in {self.path}') from None

    def metadata(self) -> dict[str, str] | None:
        """The safetensors ``__metadata__`` (None when there is none, or for other formats)."""
        if not self._metadata_read:
            self._metadata_read = True
            if self.info.get("format") == "safetensors":
                header = self._content_header()
                self._metadata = header.metadata if header else None
        return self._metadata

    def get_tensor(self, name: str) -> Any:
        """One tensor: a numpy array, a torch tensor (``framework="pt"``) or bytes."""
        info = self.tensor_info(name)
        result, target = target_for(info, self.framework)
        if self._streamed is None:
            args = ["extract", self.path, "--tensor", name, "-c"]
            if info.file is not None:
                args += ["--file", info.file]
            with Run(args, stdout=True) as run_:
                fill(run_, target, name)
                if run_.read(1):
                    raise CorruptError(f"{name}: the command wrote more than its {info.length} bytes")
                run_.finish()
        elif is_url(self.path):
            # The command decompresses no URL: the tensor's bytes as a content range.
            if info.length > 0:
                with Run(["extract", self.path, "--range", f"{info.offset}:{info.length}", "-c"], stdout=True) as run_:
                    fill(run_, target, name)
                    run_.finish()
        else:
            with Run(["decompress", self.path, "-c"], stdout=True) as run_:
                if run_.skip(info.offset) < info.offset:
                    raise run_.failure() or TruncatedError(f"{name}: the content ends before the tensor")
                fill(run_, target, name)
        if self.framework == "raw":
            return bytes(result)
        if self.framework == "pt" and self.device != "cpu":
            result = result.to(self.device)
        return result

    def close(self) -> None:
        pass

    def __enter__(self) -> MmhFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<mmh.open {self.path!r}: {len(self._tensors)} tensors>"
