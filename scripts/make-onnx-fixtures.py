#!/usr/bin/python3
"""Write the ONNX fixtures used by test/formats.onnx.test.ts.

Run with Debian's python (apt-get install python3-onnx python3-numpy), from the repository root:

    /usr/bin/python3 scripts/make-onnx-fixtures.py

The models are written by the onnx package itself (onnx.helper, onnx.numpy_helper), so the
tests read real protobuf serialisations. Values are fixed (no RNG beyond a seeded generator),
so the files only change when onnx changes how it writes. Each file is < 64 KiB. The tests
never run python: they check the committed files against test/fixtures/formats/onnx-expected.json,
which this script writes too (each tensor's name, dtype, shape, and the sha256 of its bytes).
"""

import hashlib
import json
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "formats")
expected: dict = {"generator": {"onnx": onnx.__version__, "numpy": np.__version__}, "files": {}}


def write(name: str, model: onnx.ModelProto, tensors: dict) -> None:
    data = model.SerializeToString()
    assert len(data) < 64 * 1024, f"{name} is {len(data)} bytes"
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)
    expected["files"][name] = tensors


def entry(dtype: str, a: np.ndarray) -> dict:
    return {"dtype": dtype, "shape": list(a.shape), "sha256": hashlib.sha256(a.tobytes()).hexdigest()}


def weights(rng: np.random.Generator, shape: tuple, scale: float = 0.05) -> np.ndarray:
    # Per-row scales, as trained layers have them.
    rows = np.exp(rng.normal(0, 0.25, size=(shape[0],) + (1,) * (len(shape) - 1)))
    return (rng.normal(0, scale, size=shape) * rows).astype("<f4")


def mlp() -> None:
    """Initializers of several types, as raw_data (numpy_helper) and as float_data / double_data."""
    rng = np.random.default_rng(7)
    w1 = weights(rng, (32, 64))  # 8 KiB: a region of its own
    b1 = (rng.normal(0, 0.01, size=(32,))).astype("<f4")  # small: stays in the raw regions
    w2 = weights(rng, (64, 48)).astype("<f2")  # 6 KiB of FLOAT16
    q = np.clip(np.round(rng.normal(0, 20, size=(96, 64))), -127, 127).astype("i1")  # INT8, 6 KiB
    shape = np.array([1, -1], dtype="<i8")
    d = np.linspace(-1, 1, 600, dtype="<f8")  # double_data, 4800 bytes
    listed = (np.arange(1200, dtype="<f4") - 600) / 256  # float_data, 4800 bytes
    inits = [
        numpy_helper.from_array(w1, "fc1.weight"),
        numpy_helper.from_array(b1, "fc1.bias"),
        numpy_helper.from_array(w2, "fc2.weight"),
        numpy_helper.from_array(q, "fc3.weight_quantized"),
        numpy_helper.from_array(shape, "reshape.shape"),
        helper.make_tensor("table.double", TensorProto.DOUBLE, d.shape, d.tolist(), raw=False),
        helper.make_tensor("table.float", TensorProto.FLOAT, listed.shape, listed.tolist(), raw=False),
        # INT32 values written as varints (int32_data): not fixed-width bytes, so not listed.
        helper.make_tensor("ids", TensorProto.INT32, (5,), [1, 2, 3, 300, 70000], raw=False),
    ]
    nodes = [
        helper.make_node("Gemm", ["x", "fc1.weight", "fc1.bias"], ["h"], name="fc1", transB=1),
        helper.make_node("Relu", ["h"], ["r"], name="relu"),
    ]
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
        [helper.make_tensor_value_info("r", TensorProto.FLOAT, [1, 32])],
        initializer=inits,
    )
    model = helper.make_model(graph, producer_name="mmh-fixtures", opset_imports=[helper.make_opsetid("", 13)])
    write(
        "onnx-mlp.onnx",
        model,
        {
            "fc1.weight": entry("F32", w1),
            "fc1.bias": entry("F32", b1),
            "fc2.weight": entry("F16", w2),
            "fc3.weight_quantized": entry("I8", q),
            "reshape.shape": entry("I64", shape),
            "table.double": entry("F64", d),
            "table.float": entry("F32", listed),
        },
    )


def nested() -> None:
    """Weights in node attributes: a Constant, a sparse initializer, and an If with subgraphs."""
    rng = np.random.default_rng(11)
    const = weights(rng, (40, 40))  # 6400 bytes
    then_c = weights(rng, (16, 80))  # 5120 bytes, inside the then-branch
    else_c = np.full((8,), 0.5, dtype="<f4")
    values = rng.normal(0, 1, size=(12,)).astype("<f4")
    indices = np.array([0, 5, 17, 40, 41, 99, 120, 121, 150, 151, 152, 199], dtype="<i8")

    def branch(name: str, value: np.ndarray) -> onnx.GraphProto:
        node = helper.make_node(
            "Constant", [], [f"{name}_out"], name=f"{name}_const", value=numpy_helper.from_array(value, "")
        )
        out = helper.make_tensor_value_info(f"{name}_out", TensorProto.FLOAT, list(value.shape))
        return helper.make_graph([node], name, [], [out])

    nodes = [
        helper.make_node("Constant", [], ["const_w"], name="const", value=numpy_helper.from_array(const, "")),
        helper.make_node(
            "If", ["cond"], ["picked"], name="choose", then_branch=branch("then", then_c), else_branch=branch("else", else_c)
        ),
    ]
    sparse = helper.make_sparse_tensor(
        numpy_helper.from_array(values, "sparse.weight"), numpy_helper.from_array(indices, ""), [200]
    )
    graph = helper.make_graph(
        nodes,
        "nested",
        [helper.make_tensor_value_info("cond", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("picked", TensorProto.FLOAT, None)],
        sparse_initializer=[sparse],
    )
    model = helper.make_model(graph, producer_name="mmh-fixtures", opset_imports=[helper.make_opsetid("", 13)])
    write(
        "onnx-nested.onnx",
        model,
        {
            "const_w": entry("F32", const),
            "choose/then_branch/then_out": entry("F32", then_c),
            "choose/else_branch/else_out": entry("F32", else_c),
            "sparse.weight": entry("F32", values),
            "sparse.weight/indices": entry("I64", indices),
        },
    )


def external() -> None:
    """A tensor whose data lives in another file (data_location EXTERNAL): not in this file's regions."""
    rng = np.random.default_rng(3)
    inside = weights(rng, (32, 32))
    outside = TensorProto(name="big.weight", data_type=TensorProto.FLOAT, dims=[1024, 1024])
    outside.data_location = TensorProto.EXTERNAL
    outside.external_data.add(key="location", value="weights.bin")
    outside.external_data.add(key="offset", value="0")
    outside.external_data.add(key="length", value=str(1024 * 1024 * 4))
    graph = helper.make_graph(
        [],
        "external",
        [],
        [helper.make_tensor_value_info("inside.weight", TensorProto.FLOAT, [32, 32])],
        initializer=[numpy_helper.from_array(inside, "inside.weight"), outside],
    )
    model = helper.make_model(graph, producer_name="mmh-fixtures", opset_imports=[helper.make_opsetid("", 13)])
    write("onnx-external.onnx", model, {"inside.weight": entry("F32", inside)})


if __name__ == "__main__":
    mlp()
    nested()
    external()
    with open(os.path.join(OUT, "onnx-expected.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")
