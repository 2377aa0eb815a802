"""compress, decompress, compress_file and decompress_file, checked against the command."""

from __future__ import annotations

import hashlib
import io
import os
import unittest

import mmh

from support import TempDirTest, cli


def sample(size: int) -> bytes:
    """Text-like bytes that compress, with an odd size."""
    words = b"tensor weight bias layer norm attention head 0123456789 "
    return (words * (size // len(words) + 1))[:size]


class BytesRoundTrip(unittest.TestCase):
    def test_round_trip_with_each_codec(self) -> None:
        data = sample(300_001)
        for codec in ("auto", "zstd", "lz4", "none"):
            with self.subTest(codec=codec):
                packed = mmh.compress(data, codec=codec)
                self.assertEqual(mmh.decompress(packed), data)
                if codec != "none":
                    self.assertLess(len(packed), len(data))

    def test_options_reach_the_command(self) -> None:
        data = sample(200_000)
        packed = mmh.compress(data, codec="zstd", level=19, chunk_size="64K", threads=1)
        self.assertEqual(mmh.decompress(packed, check_sha256=True, threads=1), data)
        self.assertEqual(len(packed), len(mmh.compress(data, codec="zstd", level=19, chunk_size=65536)))

    def test_empty_input(self) -> None:
        self.assertEqual(mmh.decompress(mmh.compress(b"")), b"")

    def test_accepts_any_bytes_like(self) -> None:
        data = bytearray(sample(10_000))
        self.assertEqual(mmh.decompress(memoryview(mmh.compress(data))), bytes(data))

    def test_unknown_keyword_is_a_type_error(self) -> None:
        with self.assertRaises(TypeError):
            mmh.compress(b"x", colour="blue")


class CrossLanguage(TempDirTest):
    def test_python_compresses_and_the_command_decompresses(self) -> None:
        data = sample(1_000_003)
        packed = mmh.compress(data, codec="zstd")
        self.assertEqual(cli("-d", "-c", input=packed).stdout, data)
        self.write("a.mmh", packed)
        cli("verify", self.path("a.mmh"))

    def test_the_command_compresses_and_python_decompresses(self) -> None:
        data = sample(777_777)
        packed = cli("-c", "--codec", "lz4", input=data).stdout
        self.assertEqual(mmh.decompress(packed), data)

    def test_files_by_path(self) -> None:
        data = sample(2_000_000)
        self.write("data.bin", data)
        mmh.compress_file(self.path("data.bin"), self.path("data.bin.mmh"), codec="zstd")
        self.assertEqual(cli("-d", "-c", self.path("data.bin.mmh")).stdout, data)
        # The target is replaced, as open(path, "wb") would.
        mmh.decompress_file(self.path("data.bin.mmh"), self.path("data.bin"))
        mmh.decompress_file(self.path("data.bin.mmh"), self.path("data.bin"))
        self.assertEqual(self.read("data.bin"), data)

    def test_files_as_file_objects(self) -> None:
        data = sample(3_000_000)
        packed = io.BytesIO()
        mmh.compress_file(io.BytesIO(data), packed, codec="zstd", chunk_size="256K")
        self.assertEqual(cli("-d", "-c", input=packed.getvalue()).stdout, data)
        restored = io.BytesIO()
        packed.seek(0)
        mmh.decompress_file(packed, restored)
        self.assertEqual(restored.getvalue(), data)

    def test_file_object_to_path_and_back(self) -> None:
        data = sample(1_500_000)
        mmh.compress_file(io.BytesIO(data), self.path("x.mmh"))
        out = io.BytesIO()
        mmh.decompress_file(self.path("x.mmh"), out)
        self.assertEqual(hashlib.sha256(out.getvalue()).hexdigest(), hashlib.sha256(data).hexdigest())
        self.assertEqual(mmh.info(self.path("x.mmh"))["sha256"], hashlib.sha256(data).hexdigest())

    def test_path_like(self) -> None:
        from pathlib import Path

        self.write("p.bin", b"abc" * 1000)
        mmh.compress_file(Path(self.dir) / "p.bin", Path(self.dir) / "p.mmh")
        self.assertTrue(os.path.exists(self.path("p.mmh")))
        self.assertEqual(mmh.info(Path(self.dir) / "p.mmh")["rawBytes"], 3000)


if __name__ == "__main__":
    unittest.main()
