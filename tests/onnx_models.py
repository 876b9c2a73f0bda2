"""Tiny ONNX image models built with onnx.helper for the embedding tests (nothing downloaded)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def _save(graph: onnx.GraphProto, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="indexer-tests")
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def _image_input(size: int | None, name: str = "pixel_values") -> onnx.ValueInfoProto:
    side: list[int | str] = [size, size] if size else ["H", "W"]
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", 3, *side])


def encoder(path: Path, *, dim: int = 16, seed: int = 0, size: int | None = None, hidden: int = 8) -> Path:
    """Conv 4x4 stride 4 -> Relu -> GlobalAveragePool -> Flatten -> Gemm: (N, 3, H, W) -> (N, dim)."""
    rng = np.random.default_rng(seed)
    w = numpy_helper.from_array(rng.normal(0, 0.5, (hidden, 3, 4, 4)).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.normal(0, 0.1, hidden).astype(np.float32), "b")
    g = numpy_helper.from_array(rng.normal(0, 1, (hidden, dim)).astype(np.float32), "g")
    gb = numpy_helper.from_array(rng.normal(0, 0.1, dim).astype(np.float32), "gb")
    nodes = [
        helper.make_node("Conv", ["pixel_values", "w", "b"], ["c"], kernel_shape=[4, 4], strides=[4, 4]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("GlobalAveragePool", ["r"], ["p"]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("Gemm", ["f", "g", "gb"], ["embedding"]),
    ]
    out = helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", dim])
    return _save(helper.make_graph(nodes, "encoder", [_image_input(size)], [out], [w, b, g, gb]), path)


def channel_means(path: Path, *, size: int | None = None, keep_dims: bool = False) -> Path:
    """GlobalAveragePool: the mean of each normalised channel, (N, 3) (or (N, 3, 1, 1))."""
    nodes = [helper.make_node("GlobalAveragePool", ["pixel_values"], ["p"])]
    if keep_dims:
        out = helper.make_tensor_value_info("p", TensorProto.FLOAT, ["N", 3, 1, 1])
    else:
        nodes.append(helper.make_node("Flatten", ["p"], ["means"]))
        out = helper.make_tensor_value_info("means", TensorProto.FLOAT, ["N", 3])
    return _save(helper.make_graph(nodes, "means", [_image_input(size)], [out]), path)


def hue(path: Path) -> Path:
    """The chroma of the mean colour, (N, 2): (R - G, G - B) of the channel means. With mean/std
    equal on all channels a gray pixel adds nothing, so the direction of the vector is the hue of
    whatever is coloured in the frame, however small: what no grayscale hash sees."""
    m = numpy_helper.from_array(np.array([[1, 0], [-1, 1], [0, -1]], np.float32), "m")
    nodes = [helper.make_node("GlobalAveragePool", ["pixel_values"], ["p"]),
             helper.make_node("Flatten", ["p"], ["f"]),
             helper.make_node("MatMul", ["f", "m"], ["chroma"])]
    out = helper.make_tensor_value_info("chroma", TensorProto.FLOAT, ["N", 2])
    return _save(helper.make_graph(nodes, "hue", [_image_input(None)], [out], [m]), path)


def two_inputs(path: Path) -> Path:
    nodes = [helper.make_node("Add", ["pixel_values", "other"], ["s"]),
             helper.make_node("GlobalAveragePool", ["s"], ["p"]), helper.make_node("Flatten", ["p"], ["f"])]
    out = helper.make_tensor_value_info("f", TensorProto.FLOAT, ["N", 3])
    return _save(helper.make_graph(nodes, "two", [_image_input(None), _image_input(None, "other")], [out]), path)


def token_output(path: Path) -> Path:
    """(N, 3, H/4 * W/4): a sequence of tokens per image, not one vector."""
    w = numpy_helper.from_array(np.ones((3, 3, 4, 4), np.float32) / 48, "w")
    shape = numpy_helper.from_array(np.array([0, 3, -1], np.int64), "shape")
    nodes = [helper.make_node("Conv", ["pixel_values", "w"], ["c"], kernel_shape=[4, 4], strides=[4, 4]),
             helper.make_node("Reshape", ["c", "shape"], ["tokens"])]
    out = helper.make_tensor_value_info("tokens", TensorProto.FLOAT, ["N", 3, "T"])
    return _save(helper.make_graph(nodes, "tokens", [_image_input(None)], [out], [w, shape]), path)


def tokens_and_pooled(path: Path) -> Path:
    """Like HF optimum's DINOv2 export: last_hidden_state (N, T, 3) and pooler_output (N, 3)."""
    w = numpy_helper.from_array(np.ones((3, 3, 4, 4), np.float32) / 48, "w")
    shape = numpy_helper.from_array(np.array([0, 3, -1], np.int64), "shape")
    perm = [0, 2, 1]
    nodes = [helper.make_node("Conv", ["pixel_values", "w"], ["c"], kernel_shape=[4, 4], strides=[4, 4]),
             helper.make_node("Reshape", ["c", "shape"], ["t"]),
             helper.make_node("Transpose", ["t"], ["last_hidden_state"], perm=perm),
             helper.make_node("GlobalAveragePool", ["pixel_values"], ["p"]),
             helper.make_node("Flatten", ["p"], ["pooler_output"])]
    outs = [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["N", "T", 3]),
            helper.make_tensor_value_info("pooler_output", TensorProto.FLOAT, ["N", 3])]
    return _save(helper.make_graph(nodes, "tokens_and_pooled", [_image_input(None)], outs, [w, shape]), path)
