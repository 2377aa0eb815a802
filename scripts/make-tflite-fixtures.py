#!/usr/bin/python3
"""Write the TFLite fixtures used by test/formats.tflite.test.ts.

Run with Debian's python (apt-get install python3-flatbuffers python3-numpy), from the
repository root:

    /usr/bin/python3 scripts/make-tflite-fixtures.py

TensorFlow is not packaged for Debian, so the models are built with the flatbuffers
package's own Builder, table by table as tensorflow/lite/schema/schema.fbs lays them out
(field indices in the comments): real FlatBuffer serialisations, with shared vtables,
16-byte aligned buffer data and the "TFL3" identifier, as the TFLite converter writes them.
Each file is < 64 KiB. The tests never run python: they check the committed files against
test/fixtures/formats/tflite-expected.json (each tensor's dtype, shape and the sha256 of
its bytes), which this script writes too.
"""

import hashlib
import json
import os

import flatbuffers
import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "formats")
expected: dict = {"generator": {"flatbuffers": "2.0", "numpy": np.__version__}, "files": {}}

FLOAT32, FLOAT16, INT32, UINT8, INT64, STRING, BOOL, INT16, COMPLEX64, INT8 = range(10)
TYPE_NAMES = {FLOAT32: "F32", FLOAT16: "F16", INT32: "I32", UINT8: "U8", INT8: "I8", INT64: "I64"}


def byte_vector(b: flatbuffers.Builder, data: bytes, align: int = 16) -> int:
    b.StartVector(1, len(data), align)
    b.head = b.head - len(data)
    b.Bytes[b.head : b.head + len(data)] = data
    return b.EndVector()


def int_vector(b: flatbuffers.Builder, values: list) -> int:
    b.StartVector(4, len(values), 4)
    for v in reversed(values):
        b.PrependInt32(v)
    return b.EndVector()


def offset_vector(b: flatbuffers.Builder, offsets: list) -> int:
    b.StartVector(4, len(offsets), 4)
    for o in reversed(offsets):
        b.PrependUOffsetTRelative(o)
    return b.EndVector()


def build(tensors: list, description: str = "mmh fixture") -> bytes:
    """tensors: (name, type, shape, values or None). Buffer 0 is the empty sentinel."""
    b = flatbuffers.Builder(1 << 16)
    buffers_data = [b""]
    tensor_buffer = []
    for _, _, _, values in tensors:
        tensor_buffer.append(0 if values is None else len(buffers_data))
        if values is not None:
            buffers_data.append(values.tobytes())
    # FlatBuffers builds back to front: the data vectors first, then the tables that point to them.
    data_vectors = [byte_vector(b, d) if d else None for d in buffers_data]
    buffer_tables = []
    for vec in data_vectors:
        b.StartObject(3)
        if vec is not None:
            b.PrependUOffsetTRelativeSlot(0, vec, 0)  # Buffer.data
        buffer_tables.append(b.EndObject())
    tensor_tables = []
    for (name, ttype, shape, _), buf in zip(tensors, tensor_buffer):
        n = b.CreateString(name)
        s = int_vector(b, list(shape))
        b.StartObject(10)
        b.PrependUOffsetTRelativeSlot(0, s, 0)  # Tensor.shape
        b.PrependInt8Slot(1, ttype, 0)  # Tensor.type
        b.PrependUint32Slot(2, buf, 0)  # Tensor.buffer
        b.PrependUOffsetTRelativeSlot(3, n, 0)  # Tensor.name
        tensor_tables.append(b.EndObject())
    tvec = offset_vector(b, tensor_tables)
    gname = b.CreateString("main")
    b.StartObject(5)
    b.PrependUOffsetTRelativeSlot(0, tvec, 0)  # SubGraph.tensors
    b.PrependUOffsetTRelativeSlot(4, gname, 0)  # SubGraph.name
    graph = b.EndObject()
    graphs = offset_vector(b, [graph])
    bvec = offset_vector(b, buffer_tables)
    desc = b.CreateString(description)
    b.StartObject(8)
    b.PrependUint32Slot(0, 3, 0)  # Model.version
    b.PrependUOffsetTRelativeSlot(2, graphs, 0)  # Model.subgraphs
    b.PrependUOffsetTRelativeSlot(3, desc, 0)  # Model.description
    b.PrependUOffsetTRelativeSlot(4, bvec, 0)  # Model.buffers
    model = b.EndObject()
    b.Finish(model, file_identifier=b"TFL3")
    return bytes(b.Output())


def build_external() -> bytes:
    """A model with one buffer stored after the FlatBuffer (Buffer.offset / Buffer.size)."""
    rng = np.random.default_rng(5)
    values = (rng.normal(0, 0.05, size=(32, 48))).astype("<f4")
    payload = values.tobytes()
    # Built until the offset it records is where the payload lands (16-aligned after it).
    offset = 1
    while True:
        b = flatbuffers.Builder(1024)
        b.StartObject(3)
        empty = b.EndObject()
        b.StartObject(3)
        b.PrependUint64Slot(1, offset, 0)  # Buffer.offset
        b.PrependUint64Slot(2, len(payload), 0)  # Buffer.size
        outside = b.EndObject()
        name = b.CreateString("dense/kernel")
        shape = int_vector(b, [32, 48])
        b.StartObject(10)
        b.PrependUOffsetTRelativeSlot(0, shape, 0)
        b.PrependInt8Slot(1, FLOAT32, 0)
        b.PrependUint32Slot(2, 1, 0)
        b.PrependUOffsetTRelativeSlot(3, name, 0)
        tensor = b.EndObject()
        tvec = offset_vector(b, [tensor])
        b.StartObject(5)
        b.PrependUOffsetTRelativeSlot(0, tvec, 0)
        graph = b.EndObject()
        graphs = offset_vector(b, [graph])
        bvec = offset_vector(b, [empty, outside])
        b.StartObject(8)
        b.PrependUint32Slot(0, 3, 0)
        b.PrependUOffsetTRelativeSlot(2, graphs, 0)
        b.PrependUOffsetTRelativeSlot(4, bvec, 0)
        model = b.EndObject()
        b.Finish(model, file_identifier=b"TFL3")
        flat = bytes(b.Output())
        start = (len(flat) + 15) // 16 * 16
        if start == offset:
            break
        offset = start
    expected["files"]["tflite-external.tflite"] = {
        "dense/kernel": {"dtype": "F32", "shape": [32, 48], "sha256": hashlib.sha256(payload).hexdigest()}
    }
    return flat + b"\0" * (offset - len(flat)) + payload


def write(name: str, data: bytes) -> None:
    assert len(data) < 64 * 1024, f"{name} is {len(data)} bytes"
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)


def weights(rng: np.random.Generator, shape: tuple, scale: float = 0.05) -> np.ndarray:
    rows = np.exp(rng.normal(0, 0.25, size=(shape[0],) + (1,) * (len(shape) - 1)))
    return (rng.normal(0, scale, size=shape) * rows).astype("<f4")


def mobile() -> None:
    rng = np.random.default_rng(9)
    conv = weights(rng, (16, 3, 3, 16))  # 9216 bytes
    bias = rng.normal(0, 0.01, size=(16,)).astype("<f4")
    dense_q = np.clip(np.round(rng.normal(0, 25, size=(64, 96))), -127, 127).astype("i1")  # 6144 bytes
    dense_u8 = np.clip(np.round(rng.normal(128, 20, size=(48, 100))), 0, 255).astype("u1")  # 4800 bytes
    half = weights(rng, (40, 64)).astype("<f2")  # 5120 bytes
    shape = np.array([1, 96], dtype="<i4")
    tensors = [
        ("input", FLOAT32, (1, 16, 16, 3), None),  # an activation: buffer 0
        ("conv/kernel", FLOAT32, conv.shape, conv),
        ("conv/bias", FLOAT32, bias.shape, bias),
        ("dense/kernel_int8", INT8, dense_q.shape, dense_q),
        ("dense2/kernel_uint8", UINT8, dense_u8.shape, dense_u8),
        ("head/kernel_f16", FLOAT16, half.shape, half),
        ("reshape/shape", INT32, shape.shape, shape),
        ("output", FLOAT32, (1, 96), None),
    ]
    write("tflite-mobile.tflite", build(tensors))
    expected["files"]["tflite-mobile.tflite"] = {
        name: {"dtype": TYPE_NAMES[t], "shape": list(s), "sha256": hashlib.sha256(v.tobytes()).hexdigest()}
        for name, t, s, v in tensors
        if v is not None
    }


if __name__ == "__main__":
    mobile()
    write("tflite-external.tflite", build_external())
    with open(os.path.join(OUT, "tflite-expected.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")
