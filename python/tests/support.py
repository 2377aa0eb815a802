"""Shared by the tests: the mmh command run directly (the other side of each cross-language
check), temporary folders, and safetensors bytes built by hand."""

from __future__ import annotations

import json
import os
import shlex
import struct
import subprocess
import tempfile
import unittest

import mmh._command


def cli(*args: str, input: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """``mmh ARGS`` run as a user runs it, without this package in between."""
    result = subprocess.run(
        [*mmh._command.command(), *args],
        input=input,
        capture_output=True,
        timeout=300,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"mmh {shlex.join(args)} failed: {result.stderr.decode()}")
    return result


def safetensors_bytes(tensors: list[tuple[str, str, list[int], bytes]], metadata: dict | None = None) -> bytes:
    """A safetensors file from (name, dtype, shape, data), written out by hand."""
    header: dict = {"__metadata__": metadata} if metadata else {}
    offset = 0
    for name, dtype, shape, data in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    body = json.dumps(header).encode()
    body += b" " * (-len(body) % 8)
    return struct.pack("<Q", len(body)) + body + b"".join(t[3] for t in tensors)


class TempDirTest(unittest.TestCase):
    def setUp(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="mmh-python-")
        self.dir = self._tmp.name

    def tearDown(self) -> None:
        self._tmp.cleanup()

    def path(self, name: str) -> str:
        return os.path.join(self.dir, name)

    def write(self, name: str, data: bytes) -> str:
        with open(self.path(name), "wb") as f:
            f.write(data)
        return self.path(name)

    def read(self, name: str) -> bytes:
        with open(self.path(name), "rb") as f:
            return f.read()
