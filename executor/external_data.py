"""Models whose tensors live in other files are refused before onnxruntime sees them.

A model is loaded from bytes, so onnxruntime would resolve an external-data initializer
against the working directory of the process (or take its absolute path) and read whatever
file it names into the graph. `refuse_external_data` parses the model with `onnx` (without
loading external data) and raises ModelError naming the first tensor stored outside it:
initializers and sparse initializers, tensor attributes (a `Constant`'s value included) of
every node, in the main graph, every subgraph (`If`, `Loop`, `Scan`, nested to any depth),
model-local functions and training graphs.
"""

from __future__ import annotations

from collections.abc import Iterator

import onnx
from google.protobuf.message import DecodeError

from executor.errors import ModelError

#: (tensor, where it is) for every tensor a model holds.
_Found = Iterator[tuple[onnx.TensorProto, str]]


def refuse_external_data(model_bytes: bytes) -> None:
    """Raise ModelError when any tensor of the model keeps its data in another file."""
    model = onnx.ModelProto()
    try:
        model.ParseFromString(model_bytes)
    except (DecodeError, RuntimeError, ValueError) as exc:  # too deep or not a model
        raise ModelError(
            f"cannot load model: it does not parse as ONNX ({type(exc).__name__}: {exc})"
        ) from exc
    for tensor, where in _model_tensors(model):
        if tensor.data_location == onnx.TensorProto.EXTERNAL or len(tensor.external_data):
            raise ModelError(f"model uses external data ({where})")


def _model_tensors(model: onnx.ModelProto) -> _Found:
    """Every tensor of the model, breadth first, each with where it is (for the reason)."""
    graphs: list[tuple[onnx.GraphProto, str]] = [(model.graph, "the main graph")]
    nodes: list[tuple[onnx.NodeProto, str]] = []
    for function in model.functions:
        nodes.extend((node, f"function {function.name!r}") for node in function.node)
    for index, info in enumerate(model.training_info):
        graphs.append((info.initialization, f"training graph {index} initialization"))
        graphs.append((info.algorithm, f"training graph {index} algorithm"))
    while graphs or nodes:
        if graphs:
            graph, where = graphs.pop()
            for tensor in graph.initializer:
                yield tensor, f"initializer {tensor.name!r} in {where}"
            for sparse in graph.sparse_initializer:
                name = sparse.values.name
                yield sparse.values, f"sparse initializer {name!r} in {where}"
                yield sparse.indices, f"indices of sparse initializer {name!r} in {where}"
            nodes.extend((node, where) for node in graph.node)
            continue
        node, where = nodes.pop()
        for attribute in node.attribute:
            at = f"attribute {attribute.name!r} of node {node.name!r} ({node.op_type}) in {where}"
            tensors = [attribute.t, *attribute.tensors]
            for sparse in [attribute.sparse_tensor, *attribute.sparse_tensors]:
                tensors.extend((sparse.values, sparse.indices))
            for tensor in tensors:
                yield tensor, at
            inner = f"subgraph {attribute.name!r} of node {node.name!r} ({node.op_type}) in {where}"
            if attribute.HasField("g"):
                graphs.append((attribute.g, inner))
            graphs.extend((graph, inner) for graph in attribute.graphs)
