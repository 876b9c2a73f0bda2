"""Loading and checking the user's .onnx model: one image input, one vector output.

onnxruntime is imported here only (the `embed` extra); without it every entry point says how to
install it in one line. A model fits when it has exactly one input of rank 4 (N, 3, H, W) taking
float32, and one output that is a vector per image: (N, D), or (N, D, 1, 1). A model with several
outputs (HF optimum's DINOv2 export has last_hidden_state and pooler_output) is used when exactly
one of them is such a vector, or with `output=NAME`.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import INSTALL_HINT, EmbedError

EXPECTED = "one image input (N, 3, H, W) float32 and one vector output (N, D) or (N, D, 1, 1)"


@dataclass(frozen=True)
class ModelInfo:
    path: str            # absolute
    name: str            # file name without .onnx
    sha256: str
    input_name: str
    output_name: str
    input_size: int | None  # static H (= W) of the input, None when dynamic
    dim: int


def onnxruntime() -> Any:
    """The onnxruntime module, or EmbedError saying how to install it."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise EmbedError(f"embeddings need onnxruntime, which is not installed: {INSTALL_HINT}") from None
    return ort


def sha256_of(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def providers(ort: Any) -> list[str]:
    """GPU providers first where the user installed them (onnxruntime-gpu), the CPU always last."""
    available = ort.get_available_providers()
    wanted = [p for p in ("CUDAExecutionProvider", "ROCMExecutionProvider", "DmlExecutionProvider",
                          "CoreMLExecutionProvider") if p in available]
    return wanted + ["CPUExecutionProvider"]


def session(path: str, threads: int = 0, check: bool = False) -> Any:
    """An InferenceSession of the model (EmbedError for a file onnxruntime cannot load).

    check=True: for the parent's one-image check of the model's inputs and outputs, without
    graph optimisations (they cost ~0.15 s of start-up and serve only the workers' sessions)."""
    ort = onnxruntime()
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    if check:
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(path, sess_options=opts, providers=providers(ort))
    except Exception as exc:  # noqa: BLE001 (onnxruntime raises its own kinds: InvalidProtobuf, Fail ...)
        first = " ".join(str(exc).split())[:300]
        raise EmbedError(f"{path} is not an ONNX model onnxruntime can load ({first})") from None


def load_model(path: str | os.PathLike[str], output: str | None = None) -> tuple[ModelInfo, Any]:
    """Check the model file and return what the index records of it, and its session."""
    p = Path(path)
    if not p.exists():
        raise EmbedError(f"no model file at {p}")
    if not p.is_file():
        raise EmbedError(f"{p} is not a file (give the .onnx model file)")
    sess = session(str(p.resolve()), threads=1, check=True)
    name, size = _check_input(p, sess)
    out = _vector_output(p, sess, output)
    dim = _dimension(p, sess, name, size, out)
    stem = p.name[:-5] if p.name.lower().endswith(".onnx") else p.name
    info = ModelInfo(str(p.resolve()), stem, sha256_of(p), name, out, size, dim)
    return info, sess


def _check_input(p: Path, sess: Any) -> tuple[str, int | None]:
    inputs = sess.get_inputs()
    if len(inputs) != 1:
        names = ", ".join(f"{i.name} {list(i.shape)}" for i in inputs)
        raise EmbedError(f"{p.name} has {len(inputs)} inputs ({names}); expected {EXPECTED}")
    x = inputs[0]
    shape = list(x.shape) if x.shape is not None else []
    if x.type != "tensor(float)" or len(shape) != 4 or (isinstance(shape[1], int) and shape[1] != 3):
        raise EmbedError(f"{p.name}'s input {x.name} is {x.type} {shape}; expected {EXPECTED}")
    h, w = shape[2], shape[3]
    if isinstance(h, int) and isinstance(w, int):
        if h != w:
            raise EmbedError(f"{p.name}'s input {x.name} is {h}x{w}; only square inputs are supported "
                             "(the presets centre-crop a square)")
        return x.name, h
    return x.name, None


def _vector_output(p: Path, sess: Any, output: str | None) -> str:
    outs = sess.get_outputs()
    if output is not None:
        named = [o for o in outs if o.name == output]
        if not named:
            raise EmbedError(f"{p.name} has no output named {output!r} (it has {', '.join(o.name for o in outs)})")
        return output
    fit = [o for o in outs if _is_vector(o.shape)]
    if len(outs) == 1 and (fit or not _rank_known(outs[0].shape)):
        return outs[0].name
    if len(fit) == 1:
        return fit[0].name
    names = ", ".join(f"{o.name} {list(o.shape or [])}" for o in outs)
    if len(outs) == 1:
        raise EmbedError(f"{p.name}'s output {names} is not one vector per image; expected {EXPECTED}")
    raise EmbedError(f"{p.name} has outputs {names}: none or several is a vector per image; expected {EXPECTED} "
                     "(name one with --output NAME)")


def _rank_known(shape: Any) -> bool:
    return shape is not None and len(shape) > 0


def _is_vector(shape: Any) -> bool:
    if not shape:
        return False
    if len(shape) == 2:
        return True
    return len(shape) == 4 and shape[2] == 1 and shape[3] == 1


def _dimension(p: Path, sess: Any, input_name: str, size: int | None, output: str) -> int:
    """The vector length: one black image of the input size through the model (this also checks
    the output's real shape, which a graph may leave unnamed)."""
    import numpy as np

    side = size or 224
    try:
        y = sess.run([output], {input_name: np.zeros((1, 3, side, side), np.float32)})[0]
    except Exception as exc:  # noqa: BLE001
        first = " ".join(str(exc).split())[:300]
        raise EmbedError(f"{p.name} failed on a {side}x{side} test image ({first}); expected {EXPECTED}") from None
    return vector_dim(p.name, output, y.shape)


def vector_dim(name: str, output: str, shape: tuple[int, ...]) -> int:
    """D of an output of this shape for a batch, or EmbedError when it is not a vector per image."""
    if len(shape) == 2 or (len(shape) == 4 and shape[2] == 1 and shape[3] == 1):
        if shape[1] < 1:
            raise EmbedError(f"{name}'s output {output} is empty {list(shape)}; expected {EXPECTED}")
        return int(shape[1])
    raise EmbedError(f"{name}'s output {output} has shape {list(shape)}, not one vector per image; expected {EXPECTED}")
