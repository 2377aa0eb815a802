#!/usr/bin/python3
"""Write the small model-format fixtures used by test/formats.*.test.ts.

Run with Debian's python (apt-get install python3-torch python3-numpy), from the repository root:

    /usr/bin/python3 scripts/make-format-fixtures.py

Everything is deterministic (fixed values, no RNG, fixed zip dates), so the files only change
when torch or numpy change how they write; the one exception is torch-legacy.pt, whose storage
key is a memory address. Each file is < 64 KiB. The tests never run python: they read the
committed files and check them against test/fixtures/formats/expected.json, which this script
writes too (names, dtypes, shapes and a few decoded values per tensor).
"""

import io
import json
import os
import sys
import zipfile

import numpy as np
import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "formats")
expected: dict = {"generator": {"numpy": np.__version__, "torch": torch.__version__}, "files": {}}


def write(name: str, data: bytes) -> None:
    assert len(data) < 64 * 1024, f"{name} is {len(data)} bytes"
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)


def first_values(a: np.ndarray, n: int = 4) -> list:
    flat = np.ravel(a, order="K" if not a.flags.f_contiguous else "F")
    return [v.item() if not isinstance(v.item(), complex) else [v.real.item(), v.imag.item()] for v in flat[:n]]


# ---- npy ---------------------------------------------------------------------------------

def npy_fixtures() -> None:
    arrays = {
        "f4": np.arange(12, dtype="<f4").reshape(3, 4) / 4,
        "f2": (np.arange(10, dtype="<f2") - 5) / 2,
        "f8": np.linspace(-1, 1, 5, dtype="<f8"),
        "i8": np.arange(-3, 3, dtype="<i8").reshape(2, 3) * 1000000007,
        "u1": np.arange(7, dtype="u1") * 30,
        "bool": np.array([True, False, True, True]),
        "c8": np.array([1 + 2j, -3.5 + 0.25j], dtype="<c8"),
        "f4be": (np.arange(6) * 1.5).astype(">f4"),
        "fortran": np.asfortranarray(np.arange(6, dtype="<f4").reshape(2, 3)),
        "scalar": np.array(3.25, dtype="<f8"),
        "empty": np.zeros((0, 5), dtype="<f4"),
        "structured": np.array([(1, 2.0), (3, 4.0)], dtype=[("a", "<i4"), ("b", "<f8")]),
    }
    for key, a in arrays.items():
        buf = io.BytesIO()
        np.save(buf, a)
        name = f"npy-{key}.npy"
        write(name, buf.getvalue())
        expected["files"][name] = {
            "descr": np.lib.format.dtype_to_descr(a.dtype),
            "shape": list(a.shape),
            "fortran": bool(a.flags.f_contiguous and not a.flags.c_contiguous),
            "first": first_values(a) if a.dtype.names is None else None,
        }
    # A version 2.0 and a version 3.0 header (np.save picks 1.0 when the header fits).
    a = np.arange(4, dtype="<f4")
    for version in [(2, 0), (3, 0)]:
        buf = io.BytesIO()
        np.lib.format.write_array(buf, a, version=version)
        name = f"npy-v{version[0]}.npy"
        write(name, buf.getvalue())
        expected["files"][name] = {"descr": "<f4", "shape": [4], "fortran": False, "first": first_values(a)}


# ---- npz ---------------------------------------------------------------------------------

def to_zip64(data: bytes) -> bytes:
    """Rewrite a small zip's central directory and end record in ZIP64 form."""
    import struct

    eocd = data.rindex(b"PK\x05\x06")
    _, _, _, _, count, cd_size, cd_offset, _ = struct.unpack("<IHHHHIIH", data[eocd : eocd + 22])
    out_cd = b""
    pos = cd_offset
    for _ in range(count):
        fixed = bytearray(data[pos : pos + 46])
        n, m, k = struct.unpack("<HHH", fixed[28:34])
        name = data[pos + 46 : pos + 46 + n]
        extra = data[pos + 46 + n : pos + 46 + n + m]
        comment = data[pos + 46 + n + m : pos + 46 + n + m + k]
        csize, usize = struct.unpack("<II", fixed[20:28])
        offset = struct.unpack("<I", fixed[42:46])[0]
        zip64 = struct.pack("<HHQQQ", 1, 24, usize, csize, offset)
        fixed[20:28] = struct.pack("<II", 0xFFFFFFFF, 0xFFFFFFFF)
        fixed[42:46] = struct.pack("<I", 0xFFFFFFFF)
        fixed[30:32] = struct.pack("<H", len(extra) + len(zip64))
        fixed[6:8] = struct.pack("<H", 45)
        out_cd += bytes(fixed) + name + extra + zip64 + comment
        pos += 46 + n + m + k
    zip64_eocd_offset = cd_offset + len(out_cd)
    zip64_eocd = struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, count, count, len(out_cd), cd_offset)
    locator = struct.pack("<IIQI", 0x07064B50, 0, zip64_eocd_offset, 1)
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    return data[:cd_offset] + out_cd + zip64_eocd + locator + end


def npz_fixtures() -> None:
    members = {
        "weights": np.arange(24, dtype="<f4").reshape(4, 6) / 8,
        "bias": np.arange(6, dtype="<f2"),
        "ids": np.arange(5, dtype="<i8"),
        "mask": np.array([[True, False], [False, True]]),
    }
    for name, saver in [("npz-stored.npz", np.savez), ("npz-deflated.npz", np.savez_compressed)]:
        buf = io.BytesIO()
        saver(buf, **members)
        write(name, buf.getvalue())
        expected["files"][name] = {
            k: {"descr": np.lib.format.dtype_to_descr(v.dtype), "shape": list(v.shape), "first": first_values(v)}
            for k, v in members.items()
        }
    # The stored npz rewritten as a full ZIP64 archive (zip64 end records, zip64 extra fields
    # in the central directory), which numpy only writes for huge files.
    buf = io.BytesIO()
    np.savez(buf, **members)
    data = to_zip64(buf.getvalue())
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert z.testzip() is None
    loaded = np.load(io.BytesIO(data))
    assert all(np.array_equal(loaded[k], v) for k, v in members.items())
    write("npz-zip64.npz", data)
    expected["files"]["npz-zip64.npz"] = expected["files"]["npz-stored.npz"]

    # A zip with one stored .npy and a non-.npy member: not an npz, so the dispatcher says raw.
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        inner = io.BytesIO()
        np.save(inner, np.arange(3, dtype="<f4"))
        z.writestr(zipfile.ZipInfo("a.npy", date_time=(2025, 1, 1, 0, 0, 0)), inner.getvalue())
        z.writestr(zipfile.ZipInfo("readme.txt", date_time=(2025, 1, 1, 0, 0, 0)), "not an npz")
    write("zip-other.zip", buf.getvalue())


# ---- torch -------------------------------------------------------------------------------

def torch_fixtures() -> None:
    base = torch.arange(12, dtype=torch.float32).reshape(3, 4) / 4
    state = {
        "linear.weight": base,
        "linear.weight_t": base.t(),  # a non-contiguous view sharing linear.weight's storage
        "linear.row1": base[1],  # a view with a storage offset
        "half": (torch.arange(6, dtype=torch.float16) - 3) / 2,
        "bf16": torch.arange(4, dtype=torch.bfloat16) * 0.5,
        "steps": torch.tensor([1, -2, 3000000000], dtype=torch.int64),
        "scalar": torch.tensor(2.5, dtype=torch.float64),
        "flags": torch.tensor([True, False]),
    }
    from collections import OrderedDict

    sd = OrderedDict(state)
    buf = io.BytesIO()
    torch.save(sd, buf)
    write("torch-state.pt", buf.getvalue())

    # A checkpoint-like nested object with a Parameter, ints, strings and a list.
    ckpt = {
        "model": OrderedDict([("w", torch.nn.Parameter(torch.ones(2, 2))), ("b", torch.zeros(2))]),
        "epoch": 3,
        "name": "tiny",
        "history": [0.5, 0.25],
        "extra": (torch.arange(3, dtype=torch.int32),),
    }
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    write("torch-checkpoint.pt", buf.getvalue())

    # The legacy (pre-1.6) format: a pickle stream followed by raw storages, not a zip.
    buf = io.BytesIO()
    torch.save(OrderedDict([("w", torch.arange(4, dtype=torch.float32))]), buf, _use_new_zipfile_serialization=False)
    write("torch-legacy.pt", buf.getvalue())

    def describe(t: torch.Tensor) -> dict:
        return {
            "dtype": str(t.dtype).replace("torch.", ""),
            "shape": list(t.shape),
            "storage_offset": t.storage_offset(),
            "stride": list(t.stride()),
            "first": [v.item() for v in t.reshape(-1)[:4].float()] if t.numel() else [],
        }

    expected["files"]["torch-state.pt"] = {k: describe(v) for k, v in state.items()}
    expected["files"]["torch-checkpoint.pt"] = {
        "model.w": describe(ckpt["model"]["w"].data),
        "model.b": describe(ckpt["model"]["b"]),
        "extra.0": describe(ckpt["extra"][0]),
    }


# ---- safetensors ---------------------------------------------------------------------------

def safetensors_fixture() -> None:
    """Written by hand the way the reference serializer does it (the safetensors package is
    not packaged for Debian): tensors sorted by descending dtype alignment then name, the
    JSON header padded with spaces to a multiple of 8."""
    import struct

    tensors = {
        "embed.weight": ("F32", [4, 3], (np.arange(12, dtype="<f4") - 6) / 4),
        "norm.weight": ("F16", [5], np.arange(5, dtype="<f2") / 2),
        "lm_head.weight": ("BF16", [2, 2], torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=torch.bfloat16)),
        "position_ids": ("I64", [3], np.array([0, 1, 2], dtype="<i8")),
        "mask": ("BOOL", [3], np.array([True, False, True])),
        "scales": ("F8_E4M3", [4], np.array([0x38, 0x40, 0xB8, 0x00], dtype="u1")),
        "packed": ("F4", [2, 3], np.array([0x21, 0x43, 0x65], dtype="u1")),
        "empty": ("F32", [0, 4], np.zeros(0, dtype="<f4")),
    }
    # Descending alignment (the reference's Dtype order), then name.
    rank = ["BOOL", "F4", "F6_E2M3", "F6_E3M2", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0", "I16", "U16",
            "F16", "BF16", "I32", "U32", "F32", "C64", "F64", "I64", "U64"]
    order = sorted(tensors, key=lambda k: (-rank.index(tensors[k][0]), k))
    header: dict = {"__metadata__": {"format": "pt", "note": "mmh fixture"}}
    blobs = []
    offset = 0
    for name in order:
        dtype, shape, values = tensors[name]
        if isinstance(values, torch.Tensor):
            blob = values.view(torch.int16).numpy().astype("<i2").tobytes()
        else:
            blob = values.tobytes()
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(blob)]}
        offset += len(blob)
        blobs.append(blob)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    data = struct.pack("<Q", len(text)) + text + b"".join(blobs)
    write("model.safetensors", data)
    expected["files"]["model.safetensors"] = {
        name: {"dtype": t[0], "shape": t[1]} for name, t in tensors.items()
    }


def main() -> None:
    os.makedirs(OUT, exist_ok=True)
    safetensors_fixture()
    npy_fixtures()
    npz_fixtures()
    torch_fixtures()
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")
    # Let biome lay out expected.json the way `biome check` wants it (best effort).
    import subprocess

    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    subprocess.run(["npx", "biome", "format", "--write", os.path.join(OUT, "expected.json")], cwd=root, check=False)
    print(f"wrote {len(os.listdir(OUT))} files to {os.path.normpath(OUT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
