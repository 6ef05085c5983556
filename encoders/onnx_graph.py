"""In-memory surgery on ONNX models: read one from a zip, add outputs, make the batch dynamic,
give each quantise/dequantise node its own zero point.

Used by :mod:`encoders.audio_yamnet` on the Qualcomm AI Hub YAMNet export, which
ships as a zip holding the ``.onnx`` graph and an external weight file, takes a
fixed batch of one and outputs only quantised class logits. Everything happens
in memory, so nothing is extracted to disk. ``onnx`` is imported inside the
functions, so importing this module is cheap.
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def read_onnx_zip(path: Path) -> Any:
    """Load the ``.onnx`` in ``path`` with its external weights inlined, without extracting to disk.

    Parameters
    ----------
    path : Path
        A zip holding one ``.onnx`` graph (the first by name if several) and the external
        data files it refers to, relative to the graph's folder inside the zip.

    Returns
    -------
    onnx.ModelProto
        The model, every initializer holding its own ``raw_data``.

    Raises
    ------
    FileNotFoundError
        No ``.onnx`` file in the zip.
    Exception
        Whatever ``zipfile`` and ``onnx`` raise for a file that is not a zip, a missing
        external data file or a graph that does not parse.
    """
    import onnx
    from onnx import TensorProto

    with zipfile.ZipFile(path) as zf:
        onnx_names = [n for n in zf.namelist() if n.endswith(".onnx")]
        if not onnx_names:
            raise FileNotFoundError(f"no .onnx file in {path}")
        name = sorted(onnx_names)[0]
        model = onnx.load_model_from_string(zf.read(name))
        base = name.rsplit("/", 1)[0] + "/" if "/" in name else ""
        blobs: dict[str, bytes] = {}
        for t in model.graph.initializer:
            if t.data_location != TensorProto.EXTERNAL:
                continue
            info = {e.key: e.value for e in t.external_data}
            loc = base + info["location"]
            if loc not in blobs:
                blobs[loc] = zf.read(loc)
            blob = blobs[loc]
            offset = int(info.get("offset", 0))
            length = int(info["length"]) if "length" in info else len(blob) - offset
            t.raw_data = blob[offset : offset + length]
            del t.external_data[:]
            t.data_location = TensorProto.DEFAULT
    return model


def add_float_outputs(model: Any, outputs: Sequence[tuple[str, Sequence[int]]]) -> None:
    """Expose intermediate float tensors of ``model`` (in place) as extra graph outputs.

    Parameters
    ----------
    model : onnx.ModelProto
        The model to change.
    outputs : sequence of (name, shape)
        Tensor names already produced by nodes of the graph, and their float32 shapes
        (with the batch dimension first).
    """
    from onnx import TensorProto, helper

    for name, shape in outputs:
        model.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape)))


def unshare_qdq_zero_points(model: Any) -> int:
    """Give every QuantizeLinear/DequantizeLinear node (in place) its own zero-point initializer.

    The Qualcomm YAMNet export shares one int8 weight zero point between several
    Q/DQ pairs. onnxruntime's x64 high-precision mode (``session.x64quantprecision``,
    which turns int8 weights into uint8 on CPUs without VNNI) rewrites each
    weight's zero point and fails on a shared one ("Attempt to replace the
    existing tensor"). Copies of a zero point hold the same values, so the
    model computes exactly the same thing.

    Parameters
    ----------
    model : onnx.ModelProto
        Changed in place.

    Returns
    -------
    int
        Number of copies made.
    """
    from onnx import TensorProto

    g = model.graph
    inits = {t.name: t for t in g.initializer}
    taken = {t.name for t in g.initializer} | {o for n in g.node for o in n.output}
    seen: set[str] = set()
    copies = 0
    for node in g.node:
        if node.op_type not in ("QuantizeLinear", "DequantizeLinear") or len(node.input) < 3:
            continue
        name = node.input[2]
        if name not in inits:
            continue
        if name not in seen:
            seen.add(name)
            continue
        k = 1
        while f"{name}_{k}" in taken:
            k += 1
        copy = TensorProto()
        copy.CopyFrom(inits[name])
        copy.name = f"{name}_{k}"
        taken.add(copy.name)
        g.initializer.append(copy)
        node.input[2] = copy.name
        copies += 1
    return copies


def make_batch_dynamic(model: Any) -> None:
    """Give ``model`` (in place) a symbolic batch dimension.

    Every conv/quantise op is batch-agnostic; the only op that hard-codes the
    batch is a Reshape with a constant target shape starting with 1 (here the
    ``[1, -1]`` flatten after global average pooling). Its 1 becomes 0, which
    for ``allowzero=0`` means "copy that dimension from the input".

    Parameters
    ----------
    model : onnx.ModelProto
        Changed in place; its graph inputs and outputs get the symbolic first dimension
        ``"batch"``.

    Raises
    ------
    ValueError
        A Reshape whose shape cannot be rewritten (from a Constant node, or ``allowzero=1``).
    Exception
        Strict shape inference or the ONNX checker rejects the result; ``model`` may then be
        half changed, so callers work on a copy.
    """
    import onnx
    from onnx import numpy_helper

    g = model.graph
    inits = {t.name: t for t in g.initializer}
    consts = {n.output[0]: n for n in g.node if n.op_type == "Constant"}
    for node in g.node:
        if node.op_type != "Reshape":
            continue
        allowzero = any(a.name == "allowzero" and a.i == 1 for a in node.attribute)
        shape_name = node.input[1]
        if shape_name in inits:
            arr = numpy_helper.to_array(inits[shape_name])
        elif shape_name in consts:
            raise ValueError(f"Reshape {node.name} takes its shape from a Constant node; not handled")
        else:
            continue  # computed at run time from the input shape: already batch-agnostic
        if arr.ndim == 1 and arr.size and arr[0] == 1:
            if allowzero:
                raise ValueError(f"Reshape {node.name} has allowzero=1; cannot copy the batch dimension")
            arr = arr.copy()
            arr[0] = 0
            inits[shape_name].CopyFrom(numpy_helper.from_array(arr, shape_name))
    for vi in list(g.input) + list(g.output):
        dims = vi.type.tensor_type.shape.dim
        dims[0].Clear()
        dims[0].dim_param = "batch"
    # Stale intermediate shapes would pin batch=1 again; infer them afresh (strict: fail loudly).
    del g.value_info[:]
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    onnx.checker.check_model(inferred)
    model.CopyFrom(inferred)
