"""mmh.torch.load_file / save_file: every dtype torch has, bit for bit, BF16 included."""

from __future__ import annotations

import struct
import unittest

import mmh

from support import TempDirTest, cli, safetensors_bytes

try:
    import torch
except ImportError as error:  # pragma: no cover - depends on the machine
    torch = None
    TORCH_MISSING = f"torch cannot be imported ({error}); install python3-torch to run these tests"
else:
    TORCH_MISSING = ""

# Bit patterns that a float conversion would not keep: NaN payloads, -0, subnormals, inf.
BF16_BITS = [0x0000, 0x8000, 0x0001, 0x807F, 0x7F80, 0xFF80, 0x7FC1, 0xFFFF, 0x3F80, 0x4049]
F16_BITS = [0x0000, 0x8000, 0x0001, 0x7C00, 0xFC00, 0x7E01, 0xFFFF, 0x3C00]


def bits(tensor):
    """A tensor's bytes, for comparing bit for bit."""
    flat = tensor.detach().contiguous().reshape(-1)
    return flat.view(torch.uint8).numpy().tobytes()


def every_dtype() -> dict:
    generator = torch.Generator().manual_seed(5)
    out = {}
    for st, dtype in mmh.torch.dtypes().items():
        if dtype.is_floating_point:
            out[st] = (torch.randn(17, 33, generator=generator) * 10).to(dtype)
        elif dtype == torch.bool:
            out[st] = torch.randint(0, 2, (7, 7), generator=generator).bool()
        elif dtype.is_complex:
            out[st] = torch.randn(5, 3, dtype=dtype, generator=generator)
        else:
            info = torch.iinfo(dtype)
            low, high = max(info.min, -(2**62)), min(info.max, 2**62)
            out[st] = torch.randint(low, high, (192,), generator=generator, dtype=torch.int64).to(dtype)
    out["BF16_special"] = torch.tensor(BF16_BITS, dtype=torch.int32).to(torch.int16).view(torch.bfloat16)
    out["F16_special"] = torch.tensor(F16_BITS, dtype=torch.int32).to(torch.int16).view(torch.float16)
    out["scalar"] = torch.tensor(2.5, dtype=torch.bfloat16)
    out["empty"] = torch.zeros(0, 3, dtype=torch.bfloat16)
    out["transposed"] = torch.arange(12, dtype=torch.float32).reshape(3, 4).t()
    return out


@unittest.skipIf(torch is None, TORCH_MISSING)
class TorchFiles(TempDirTest):
    def test_the_dtypes_torch_has(self) -> None:
        names = set(mmh.torch.dtypes())
        self.assertTrue({"F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL"} <= names, names)
        for st in ("F8_E4M3", "F8_E5M2"):
            self.assertEqual(st in names, hasattr(torch, {"F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2"}[st]))

    def test_save_then_load_every_dtype_bit_for_bit(self) -> None:
        tensors = every_dtype()
        mmh.torch.save_file(tensors, self.path("t.mmh"), metadata={"format": "pt"})
        loaded = mmh.torch.load_file(self.path("t.mmh"))
        self.assertEqual(sorted(loaded), sorted(tensors))
        for name, want in tensors.items():
            with self.subTest(name=name, dtype=str(want.dtype)):
                got = loaded[name]
                self.assertEqual(got.dtype, want.dtype)
                self.assertEqual(tuple(got.shape), tuple(want.shape))
                self.assertEqual(bits(got), bits(want))

    def test_load_a_file_the_command_compressed_every_dtype(self) -> None:
        # safetensors bytes built by hand, compressed by the command (tensor-aware chunks),
        # read back through load_file and through open(framework="pt").
        tensors = every_dtype()
        raw = safetensors_bytes(
            [(name, st_of(t), list(t.shape), bits(t)) for name, t in tensors.items()]
        )
        self.write("m.safetensors", raw)
        cli(self.path("m.safetensors"), "-o", self.path("m.mmh"), "--chunk-size", "4K")
        self.assertEqual(mmh.info(self.path("m.mmh"))["format"], "safetensors")
        loaded = mmh.torch.load_file(self.path("m.mmh"), device="cpu")
        with mmh.open(self.path("m.mmh"), framework="pt") as f:
            for name in ("BF16", "BF16_special", "F16_special", "scalar", "BOOL"):
                with self.subTest(name=name):
                    got = f.get_tensor(name)
                    self.assertEqual(got.dtype, tensors[name].dtype)
                    self.assertEqual(bits(got), bits(tensors[name]))
        for name, want in tensors.items():
            with self.subTest(name=name):
                self.assertEqual(loaded[name].dtype, want.dtype)
                self.assertEqual(bits(loaded[name]), bits(want))

    def test_bf16_values(self) -> None:
        values = torch.tensor([1.0, -2.0, 3.140625, 0.0, float("inf")], dtype=torch.bfloat16)
        mmh.torch.save_file({"v": values}, self.path("v.mmh"))
        got = mmh.torch.load_file(self.path("v.mmh"))["v"]
        self.assertTrue(torch.equal(got, values))
        content = cli("-d", "-c", self.path("v.mmh")).stdout
        (n,) = struct.unpack("<Q", content[:8])
        self.assertEqual(content[8 + n :], bits(values))

    def test_not_a_tensor(self) -> None:
        with self.assertRaises(TypeError):
            mmh.torch.save_file({"x": [1, 2, 3]}, self.path("x.mmh"))


def st_of(tensor) -> str:
    return next(k for k, v in mmh.torch.dtypes().items() if v == tensor.dtype)


if __name__ == "__main__":
    unittest.main()
