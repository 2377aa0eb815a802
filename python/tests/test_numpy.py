"""mmh.numpy.load_file / save_file and mmh.open().get_tensor, with numpy arrays."""

from __future__ import annotations

import unittest

import mmh

from support import TempDirTest, cli, safetensors_bytes

try:
    import numpy as np
except ImportError:  # pragma: no cover
    np = None


def arrays() -> dict:
    rng = np.random.default_rng(7)
    return {
        "f64": rng.standard_normal((3, 5)),
        "f32": rng.standard_normal((64, 33)).astype(np.float32),
        "f16": rng.standard_normal((7, 192)).astype(np.float16),
        "i64": rng.integers(-(2**62), 2**62, (9,), dtype=np.int64),
        "i32": rng.integers(-(2**31), 2**31 - 1, (4, 4), dtype=np.int32),
        "i16": rng.integers(-(2**15), 2**15 - 1, (1792,), dtype=np.int16),
        "i8": rng.integers(-128, 127, (2, 3, 4), dtype=np.int8),
        "u8": rng.integers(0, 255, (100,), dtype=np.uint8),
        "u16": rng.integers(0, 2**16 - 1, (10,), dtype=np.uint16),
        "u32": rng.integers(0, 2**32 - 1, (10,), dtype=np.uint32),
        "u64": rng.integers(0, 2**63, (10,), dtype=np.uint64),
        "bool": rng.integers(0, 2, (5, 5)).astype(bool),
        "scalar": np.array(3.5, dtype=np.float32),
        "empty": np.zeros((0, 4), dtype=np.float32),
        "strided": rng.standard_normal((8, 8)).astype(np.float32)[:, ::2],
        "big_endian": np.arange(6, dtype=">i4").reshape(2, 3),
    }


def same(test: unittest.TestCase, got, want) -> None:
    test.assertEqual(got.shape, want.shape)
    test.assertEqual(got.dtype.newbyteorder("="), want.dtype.newbyteorder("="))
    test.assertTrue(np.array_equal(got, want), f"{got} != {want}")


@unittest.skipIf(np is None, "numpy is not installed")
class NumpyFiles(TempDirTest):
    def test_save_then_load_every_dtype(self) -> None:
        tensors = arrays()
        mmh.numpy.save_file(tensors, self.path("t.mmh"), metadata={"format": "np"})
        loaded = mmh.numpy.load_file(self.path("t.mmh"))
        self.assertEqual(sorted(loaded), sorted(tensors))
        for name, want in tensors.items():
            with self.subTest(name=name):
                same(self, loaded[name], want)

    def test_the_command_restores_a_valid_safetensors_file(self) -> None:
        tensors = {"a": np.arange(10, dtype=np.float32), "b": np.ones((2, 2), dtype=np.int8)}
        mmh.numpy.save_file(tensors, self.path("t.mmh"), metadata={"k": "v"})
        content = cli("-d", "-c", self.path("t.mmh")).stdout
        self.write("t.safetensors", content)
        # The command recognises the restored bytes as safetensors, with both tensors.
        mmh.compress_file(self.path("t.safetensors"), self.path("again.mmh"))
        info = mmh.info(self.path("again.mmh"))
        self.assertEqual(info["format"], "safetensors")
        self.assertEqual({t["name"]: t["dtype"] for t in info["tensors"]}, {"a": "F32", "b": "I8"})

    def test_load_a_file_the_command_compressed(self) -> None:
        data = np.arange(1000, dtype=np.float32).reshape(10, 100)
        ids = np.arange(7, dtype=np.int64)
        raw = safetensors_bytes([("w", "F32", [10, 100], data.tobytes()), ("ids", "I64", [7], ids.tobytes())])
        self.write("m.safetensors", raw)
        cli(self.path("m.safetensors"), "-o", self.path("m.mmh"))
        loaded = mmh.numpy.load_file(self.path("m.mmh"))
        same(self, loaded["w"], data)
        same(self, loaded["ids"], ids)

    def test_bf16_without_ml_dtypes_is_its_bit_pattern(self) -> None:
        bits = np.array([0x3F80, 0xC000, 0x7FC1, 0x8000, 0x0001], dtype=np.uint16)
        self.write("b.safetensors", safetensors_bytes([("x", "BF16", [5], bits.tobytes())]))
        cli(self.path("b.safetensors"), "-o", self.path("b.mmh"))
        got = mmh.numpy.load_file(self.path("b.mmh"))["x"]
        self.assertEqual(got.dtype.itemsize, 2)
        self.assertTrue(np.array_equal(got.view(np.uint16), bits))

    def test_not_safetensors(self) -> None:
        self.write("t.mmh", mmh.compress(b"plain text, not a tensor file" * 100))
        with self.assertRaises(mmh.UnsupportedError) as caught:
            mmh.numpy.load_file(self.path("t.mmh"))
        self.assertIn("not safetensors", str(caught.exception))


@unittest.skipIf(np is None, "numpy is not installed")
class Open(TempDirTest):
    def setUp(self) -> None:
        super().setUp()
        rng = np.random.default_rng(3)
        self.tensors = {
            "embed": rng.standard_normal((300, 64)).astype(np.float32),
            "norm": rng.standard_normal((64,)).astype(np.float16),
            "ids": np.arange(50, dtype=np.int32),
        }
        raw = safetensors_bytes(
            [(k, {"float32": "F32", "float16": "F16", "int32": "I32"}[v.dtype.name], list(v.shape), v.tobytes()) for k, v in self.tensors.items()],
            metadata={"format": "pt"},
        )
        self.write("m.safetensors", raw)

    def test_get_tensor_from_the_tensor_table(self) -> None:
        mmh.compress_file(self.path("m.safetensors"), self.path("m.mmh"), chunk_size="16K")
        with mmh.open(self.path("m.mmh")) as f:
            self.assertEqual(f.keys(), ["embed", "norm", "ids"])
            self.assertEqual(f.metadata(), {"format": "pt"})
            for name, want in self.tensors.items():
                same(self, f.get_tensor(name), want)
            self.assertEqual(f.get_tensor("ids") .tobytes(), self.tensors["ids"].tobytes())
            with self.assertRaises(mmh.NotFoundError) as caught:
                f.get_tensor("absent")
            self.assertEqual(caught.exception.code, "E_NOT_FOUND")

    def test_get_tensor_from_a_streamed_file(self) -> None:
        # save_file streams into the command, which then has no tensor table: open reads the
        # safetensors header from the content instead.
        mmh.numpy.save_file(self.tensors, self.path("s.mmh"), metadata={"format": "np"})
        self.assertEqual(mmh.info(self.path("s.mmh"))["tensors"], [])
        with mmh.open(self.path("s.mmh")) as f:
            self.assertEqual(sorted(f.keys()), sorted(self.tensors))
            self.assertEqual(f.metadata(), {"format": "np"})
            same(self, f.get_tensor("norm"), self.tensors["norm"])
            same(self, f.get_tensor("ids"), self.tensors["ids"])

    def test_raw_framework_gives_bytes(self) -> None:
        mmh.compress_file(self.path("m.safetensors"), self.path("m.mmh"))
        with mmh.open(self.path("m.mmh"), framework="raw") as f:
            self.assertEqual(f.get_tensor("embed"), self.tensors["embed"].tobytes())

    def test_a_file_that_is_not_tensors_has_no_keys(self) -> None:
        self.write("t.mmh", mmh.compress(b"just text " * 1000))
        with mmh.open(self.path("t.mmh")) as f:
            self.assertEqual(f.keys(), [])
            self.assertIsNone(f.metadata())


if __name__ == "__main__":
    unittest.main()
