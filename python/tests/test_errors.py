"""Failures arrive as MmhError subclasses carrying the command's codes."""

from __future__ import annotations

import io
import os
import unittest
from unittest import mock

import mmh
from mmh.errors import from_stderr

from support import TempDirTest


class ErrorsFromTheCommand(TempDirTest):
    def test_corrupt_input(self) -> None:
        with self.assertRaises(mmh.CorruptError) as caught:
            mmh.decompress(b"this is not an mmh stream at all, not even close")
        self.assertEqual(caught.exception.code, "E_CORRUPT")

    def test_truncated_input(self) -> None:
        packed = mmh.compress(b"abc" * 100_000, codec="zstd")
        with self.assertRaises(mmh.TruncatedError) as caught:
            mmh.decompress(packed[: len(packed) // 2])
        self.assertEqual(caught.exception.code, "E_TRUNCATED")

    def test_checksum_mismatch(self) -> None:
        data = bytes(range(256)) * 4096
        packed = bytearray(mmh.compress(data, codec="none"))
        packed[len(packed) // 2] ^= 0x01
        with self.assertRaises(mmh.ChecksumError) as caught:
            mmh.decompress(bytes(packed))
        self.assertEqual(caught.exception.code, "E_CHECKSUM")

    def test_corrupt_file_through_a_file_object(self) -> None:
        with self.assertRaises(mmh.CorruptError):
            mmh.decompress_file(io.BytesIO(b"\0" * 100_000), io.BytesIO())

    def test_missing_file(self) -> None:
        missing = self.path("missing.mmh")
        for call in (
            lambda: mmh.decompress_file(missing, self.path("out")),
            lambda: mmh.open(missing),
            lambda: mmh.numpy.load_file(missing),
        ):
            with self.assertRaises(mmh.MmhIOError) as caught:
                call()
            self.assertEqual(caught.exception.code, "E_IO")
            self.assertIsInstance(caught.exception, FileNotFoundError)
            self.assertIn("missing.mmh", str(caught.exception))
        self.assertFalse(os.path.exists(self.path("out")))

    def test_bad_option(self) -> None:
        with self.assertRaises(mmh.BadOptionError) as caught:
            mmh.compress(b"x", codec="nonsense")
        self.assertEqual(caught.exception.code, "E_BAD_OPTION")
        self.assertIsInstance(caught.exception, ValueError)

    def test_limit(self) -> None:
        packed = mmh.compress(b"\0" * 100_000)
        with self.assertRaises(mmh.LimitError) as caught:
            mmh.decompress(packed, max_output=1000)
        self.assertEqual(caught.exception.code, "E_LIMIT")

    def test_output_not_left_behind_on_failure(self) -> None:
        with self.assertRaises(mmh.CorruptError):
            mmh.decompress_file(self.write("bad.mmh", b"\1" * 5000), self.path("restored"))
        self.assertEqual(os.listdir(self.dir), ["bad.mmh"])


class MissingCommand(unittest.TestCase):
    def test_mmh_bin_naming_nothing(self) -> None:
        with mock.patch.dict(os.environ, {"MMH_BIN": "/nonexistent/bin/mmh"}):
            with self.assertRaises(mmh.CommandNotFoundError) as caught:
                mmh.compress(b"x")
        self.assertEqual(caught.exception.code, "E_NO_COMMAND")
        self.assertIn("npm pack && npm install -g ./mmh-", str(caught.exception))
        self.assertIsInstance(caught.exception, mmh.MmhError)

    def test_nothing_on_path(self) -> None:
        with mock.patch.dict(os.environ, {"MMH_BIN": "", "PATH": "/nonexistent"}):
            with self.assertRaises(mmh.CommandNotFoundError) as caught:
                mmh.open("model.mmh")
        self.assertIn("npm pack && npm install -g ./mmh-", str(caught.exception))


class StderrParsing(unittest.TestCase):
    def test_each_code_has_its_class(self) -> None:
        cases = {
            "E_CORRUPT": mmh.CorruptError,
            "E_CHECKSUM": mmh.ChecksumError,
            "E_TRUNCATED": mmh.TruncatedError,
            "E_UNSUPPORTED": mmh.UnsupportedError,
            "E_BAD_OPTION": mmh.BadOptionError,
            "E_LIMIT": mmh.LimitError,
            "E_IO": mmh.MmhIOError,
            "E_EXISTS": mmh.ExistsError,
            "E_UNSAFE_PATH": mmh.UnsafePathError,
            "E_NOT_FOUND": mmh.NotFoundError,
            "E_BASE_MISMATCH": mmh.BaseMismatchError,
            "E_USAGE": mmh.UsageError,
            "E_ABORTED": mmh.AbortedError,
            "E_INTERNAL": mmh.InternalError,
        }
        for code, cls in cases.items():
            with self.subTest(code=code):
                error = from_stderr(f"progress...\nmmh: {code}: what happened\n", 1)
                self.assertIs(type(error), cls)
                self.assertEqual(error.code, code)
                self.assertEqual(error.message, "what happened")

    def test_unknown_code_and_no_line(self) -> None:
        self.assertEqual(from_stderr("mmh: E_FUTURE: new\n", 1).code, "E_FUTURE")
        self.assertIsInstance(from_stderr("Segmentation fault\n", 139), mmh.InternalError)
        self.assertIsInstance(from_stderr("", -15), mmh.AbortedError)


if __name__ == "__main__":
    unittest.main()
