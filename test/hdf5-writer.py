"""Writes HDF5 test files with h5py (Debian's python3-h5py) into the directory given as
argv[1], and prints a JSON description of each dataset: path, numpy dtype, shape, the
sha256 of its values as little-endian C-order bytes, and how it is stored."""
import hashlib
import json
import os
import sys

import h5py
import numpy as np

out = sys.argv[1]
rng = np.random.default_rng(15)


def keras_like(f):
    f.attrs["keras_version"] = "2.11.0"
    f.attrs["backend"] = "tensorflow"
    mw = f.create_group("model_weights")
    layers = {
        "dense": [("kernel:0", rng.normal(0, 0.05, (64, 48)).astype("<f4")), ("bias:0", np.zeros(48, "<f4"))],
        "conv2d": [
            ("kernel:0", rng.normal(0, 0.1, (3, 3, 8, 16)).astype("<f2")),
            ("bias:0", rng.normal(0, 0.01, 16).astype("<f2")),
        ],
        "embedding": [("embeddings:0", rng.normal(0, 1, (40, 32)).astype("<f4"))],
    }
    mw.attrs["layer_names"] = [n.encode() for n in layers]
    for name, weights in layers.items():
        g = mw.create_group(name).create_group(name)
        mw[name].attrs["weight_names"] = [f"{name}/{w}".encode() for w, _ in weights]
        for wname, value in weights:
            g.create_dataset(wname, data=value)
    other = f.create_group("other")
    # Chunks along the first axis that tile the array: the bytes are the contiguous array's.
    other.create_dataset("rows", data=rng.normal(0, 1, (64, 40)).astype("<f4"), chunks=(16, 40))
    # Square tiles: chunk regions only.
    other.create_dataset("tiles", data=rng.normal(0, 1, (50, 40)).astype("<f4"), chunks=(16, 16))
    other.create_dataset("gzip", data=rng.normal(0, 1, (64, 64)).astype("<f4"), chunks=(32, 32), compression="gzip")
    other.create_dataset("big_endian", data=rng.normal(0, 1, 2000).astype(">f4"))
    other.create_dataset("int32", data=np.arange(1500, dtype="<i4"))
    other.create_dataset("float64", data=rng.normal(0, 1, (30, 30)))
    other.create_dataset("uint8", data=np.arange(5000, dtype=np.uint8) % 251)
    other.create_dataset("scalar", data=np.float32(2.5))
    # Resizable: an extensible-array chunk index in the latest format.
    other.create_dataset("growable", data=rng.normal(0, 1, (32, 40)).astype("<f4"), chunks=(8, 40), maxshape=(None, 40))
    # Unlimited in its second dimension: the chunk grid is walked with that dimension first.
    other.create_dataset("cols", data=np.arange(40 * 30, dtype="<f4").reshape(40, 30), chunks=(40, 3), maxshape=(40, None))
    other.create_dataset("compact", data=np.arange(6, dtype="<f4"), **compact())
    # A hard link back up the tree (a cycle) and a second name for one dataset.
    other["loop"] = f["other"]
    other["alias"] = f["model_weights/dense/dense/kernel:0"]
    other["soft"] = h5py.SoftLink("/model_weights")


def compact():
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_layout(h5py.h5d.COMPACT)
    return {"dcpl": dcpl}


def crowd(f):
    # More links than a compact group holds: dense storage in the latest format.
    g = f.create_group("crowd")
    # A soft link first: its value lies between link messages in the heap.
    g["a_soft"] = h5py.SoftLink("/other")
    for i in range(12):
        g.create_dataset(f"w{i}", data=np.full(4, i, "<f4"))


files = {}
for libver in ["earliest", "v108", "latest"]:
    name = f"keras-{libver}.h5"
    path = os.path.join(out, name)
    with h5py.File(path, "w", libver=(libver, "latest")) as f:
        keras_like(f)
        if libver == "latest":
            crowd(f)
    datasets = {}
    with h5py.File(path, "r") as f:

        def visit(dname, obj):
            if isinstance(obj, h5py.Dataset) and obj.name not in datasets:
                value = obj[()]
                datasets[obj.name] = {
                    "dtype": obj.dtype.str,
                    "shape": list(obj.shape),
                    "sha256": hashlib.sha256(np.ascontiguousarray(value).tobytes()).hexdigest(),
                    "chunks": list(obj.chunks) if obj.chunks else None,
                    "compression": obj.compression,
                    "first": [float(x) for x in np.asarray(value).reshape(-1)[:4]],
                }

        f.visititems(visit)
    files[name] = datasets
# A group of 300 members (a two-level B-tree of symbol-table nodes; a fractal heap with an
# indirect block in the latest format) and datasets of many small chunks.
for libver in ["earliest", "latest"]:
    with h5py.File(os.path.join(out, f"wide-{libver}.h5"), "w", libver=(libver, "latest")) as f:
        g = f.create_group("wide")
        for i in range(300):
            g.create_dataset(f"w{i:04d}", data=np.full(8, i, "<f4"))
        f.create_dataset("rows", data=np.arange(300 * 40, dtype="<f4").reshape(300, 40), chunks=(1, 40))
        # Resizable: an extensible array with super blocks in the latest format.
        f.create_dataset(
            "rows_ea", data=np.arange(300 * 40, dtype="<f4").reshape(300, 40), chunks=(1, 40), maxshape=(None, 40)
        )
        f.create_dataset("grid", data=np.arange(200 * 200, dtype="<f4").reshape(200, 200), chunks=(10, 10))

# A dense group with deleted links: the heap holds the stale messages of the deleted ones.
with h5py.File(os.path.join(out, "holes-latest.h5"), "w", libver="latest") as f:
    g = f.create_group("g")
    for i in range(20):
        g.create_dataset(f"d{i:02d}", data=np.full(1024, i, "<f4"))
    for i in [3, 7, 11]:
        del g[f"d{i:02d}"]
    f.create_dataset("kept", data=np.arange(2048, dtype="<f4"))

# Groups nested deeper than the recogniser follows.
with h5py.File(os.path.join(out, "deep.h5"), "w") as f:
    g = f
    for i in range(70):
        g = g.create_group(f"g{i}")
    g.create_dataset("w", data=np.arange(4, dtype="<f4"))
print(json.dumps(files, indent=1))
