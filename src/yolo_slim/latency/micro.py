"""Single-layer OpenVINO models built with the opset API, for timing one spec.

Each builder makes the operations the exported graph of a darknet network runs for
that layer after `openvino.convert_model` of our ONNX export: a convolution plus the
folded BatchNorm bias plus the activation (PRelu 0.1 for leaky, Mish, Swish,
Sigmoid, Relu); -inf Pad then MaxPool; nearest Interpolate; Add; Concat; Slice; and
the YOLO decode (Reshape, Transpose, Slice, Sigmoid/Exp, grid and anchor arithmetic,
Concat, Reshape). Building through the opset takes milliseconds where a PyTorch ->
ONNX -> OpenVINO round trip per shape takes seconds; the prediction test checks
the sum of the layers against the real export.

Inside a network, OpenVINO's CPU plugin keeps feature maps in a channels-last
layout (`acdb`) and picks each node's layout from its producer, so a lone layer fed
from an NCHW Parameter would run other kernels and pay layout reorders a network
does not. The micro-models therefore take and return NHWC tensors through
Transposes, which the plugin turns into no-op views next to convs; every other op
reads the output of a helper depthwise 1x1 conv (`helper_specs`), as it reads a conv's output
in a network, and the table subtracts the time of a reference model made of the
helpers alone (`helpers_model`: the same inputs and outputs). The first
layer reads the NCHW image as a network does, reorder included. Weights are seeded
noise (speed does not depend on values). `chain_model(k)` is k identical small
convs in a row, the probe of the fixed per-inference cost.
"""

from __future__ import annotations

import numpy as np

from yolo_slim.latency.specs import (
    AddSpec,
    ConcatSpec,
    ConvSpec,
    DecodeSpec,
    HeadConcatSpec,
    PoolSpec,
    SliceSpec,
    Spec,
    UpsampleSpec,
)

_F32 = np.float32
_TO_NCHW = np.array([0, 3, 1, 2], np.int64)
_TO_NHWC = np.array([0, 2, 3, 1], np.int64)


def _ops():
    import openvino.opset13 as ops

    return ops


def _const(shape: tuple[int, ...], seed: int = 0, scale: float = 0.01):
    rng = np.random.default_rng(seed)
    return _ops().constant((rng.standard_normal(shape, dtype=_F32) * scale).astype(_F32))


def activation(x, name: str):
    """Apply a darknet activation as OpenVINO converts its ONNX export."""
    ops = _ops()
    if name == "leaky":
        return ops.prelu(x, ops.constant(np.array([0.1], _F32)))
    if name == "relu":
        return ops.relu(x)
    if name == "mish":
        return ops.mish(x)
    if name == "swish":
        return ops.swish(x)
    if name == "logistic":
        return ops.sigmoid(x)
    if name == "linear":
        return x
    raise ValueError(f"unsupported activation {name!r}")


def conv(x, spec: ConvSpec, seed: int = 0):
    """Convolution + bias + activation reading `x` (NCHW [1, cin, h, w])."""
    ops = _ops()
    pad = [spec.padding, spec.padding]
    if spec.groups == 1:
        weights = _const((spec.cout, spec.cin, spec.size, spec.size), seed)
        y = ops.convolution(x, weights, [spec.stride] * 2, pad, pad, [1, 1])
    else:
        g = spec.groups
        weights = _const((g, spec.cout // g, spec.cin // g, spec.size, spec.size), seed)
        y = ops.group_convolution(x, weights, [spec.stride] * 2, pad, pad, [1, 1])
    y = ops.add(y, _const((1, spec.cout, 1, 1), seed + 1))
    return activation(y, spec.activation)


def _map_input(c: int, h: int, w: int):
    """A channels-last Parameter [1, h, w, c] and its NCHW view."""
    ops = _ops()
    param = ops.parameter([1, h, w, c], _F32)
    return param, ops.transpose(param, ops.constant(_TO_NCHW))


def _map_output(y):
    ops = _ops()
    return ops.result(ops.transpose(y, ops.constant(_TO_NHWC)))


def _decode(x, spec: DecodeSpec):
    ops = _ops()
    a, n, h, w = spec.anchors, spec.outputs, spec.h, spec.w
    p = ops.reshape(x, ops.constant(np.array([1, a, n, h, w], np.int64)), False)
    p = ops.transpose(p, ops.constant(np.array([0, 1, 3, 4, 2], np.int64)))

    def cols(start: int, stop: int):
        return ops.slice(p, np.array([start]), np.array([stop]), np.array([1]), np.array([4]))

    gy, gx = np.meshgrid(np.arange(h, dtype=_F32), np.arange(w, dtype=_F32), indexing="ij")
    grid = ops.constant(np.stack((gx, gy), -1)[None, None])
    stride = ops.constant(np.array([8.0, 8.0], _F32))
    anchors = ops.constant(np.full((1, a, 1, 1, 2), 16.0, _F32))
    xy, wh, rest = cols(0, 2), cols(2, 4), cols(4, n)
    if spec.new_coords:
        wh = ops.multiply(ops.multiply(ops.multiply(wh, wh), np.array(4.0, _F32)), anchors)
    else:
        xy, wh, rest = ops.sigmoid(xy), ops.multiply(ops.exp(wh), anchors), ops.sigmoid(rest)
    xy = ops.subtract(ops.multiply(xy, np.array(2.0, _F32)), np.array(0.5, _F32))
    xy = ops.multiply(ops.add(xy, grid), stride)
    out = ops.concat([xy, wh, rest], 4)
    return ops.reshape(out, ops.constant(np.array([1, a * h * w, n], np.int64)), False)


def helper_specs(spec: Spec) -> tuple[ConvSpec, ...]:
    """The helper convs `layer_model(spec)` feeds the timed op from (none for a conv),
    one per input map: depthwise 1x1, linear (one pass over the map, so the time
    subtracted is small next to the op's own; its output has a conv's layout)."""
    if isinstance(spec, (ConvSpec, HeadConcatSpec)):
        return ()
    h, w = spec.h, spec.w
    if isinstance(spec, ConcatSpec):
        channels: tuple[int, ...] = spec.parts
    elif isinstance(spec, AddSpec):
        channels = (spec.c,) * spec.inputs
    elif isinstance(spec, DecodeSpec):
        channels = (spec.anchors * spec.outputs,)
    else:
        channels = (spec.c,)
    return tuple(ConvSpec(c, c, 1, 1, 0, c, h, w, "linear") for c in channels)


def layer_model(spec: Spec):
    """An `ov.Model` running the operations of `spec`, fed by `helper_specs(spec)`."""
    import openvino as ov

    ops = _ops()
    if isinstance(spec, HeadConcatSpec):
        params = [ops.parameter([1, r, spec.outputs], _F32) for r in spec.rows]
        return ov.Model([ops.result(ops.concat(params, 1))], params, spec.kind)
    if isinstance(spec, ConvSpec):
        if spec.image_input:
            param = ops.parameter([1, spec.cin, spec.h, spec.w], _F32)
            return ov.Model([_map_output(conv(param, spec))], [param], spec.kind)
        param, x = _map_input(spec.cin, spec.h, spec.w)
        return ov.Model([_map_output(conv(x, spec))], [param], spec.kind)
    params, inputs = [], []
    for i, helper in enumerate(helper_specs(spec)):
        param, x = _map_input(helper.cin, helper.h, helper.w)
        params.append(param)
        inputs.append(conv(x, helper, seed=50 + i))
    x = inputs[0]
    if isinstance(spec, PoolSpec):
        if spec.padding:
            before = spec.padding // 2
            begin = np.array([0, 0, before, before], np.int64)
            end = np.array([0, 0, spec.padding - before, spec.padding - before], np.int64)
            x = ops.pad(x, begin, end, "constant", ops.constant(np.array(-np.inf, _F32)))
        y = _map_output(ops.max_pool(x, [spec.stride] * 2, [1, 1], [0, 0], [0, 0], [spec.size] * 2, rounding_type="floor").output(0))
    elif isinstance(spec, UpsampleSpec):
        import openvino.opset11 as ops11

        y = _map_output(ops11.interpolate(
            x, np.array([float(spec.stride)] * 2, _F32), "nearest", "scales", axes=np.array([2, 3], np.int64),
            coordinate_transformation_mode="asymmetric", nearest_mode="floor",
        ))
    elif isinstance(spec, AddSpec):
        total = x
        for other in inputs[1:]:
            total = ops.add(total, other)
        y = _map_output(activation(total, spec.activation))
    elif isinstance(spec, ConcatSpec):
        y = _map_output(ops.concat(inputs, 1))
    elif isinstance(spec, SliceSpec):
        size = spec.c // spec.groups
        start = spec.group_id * size
        y = _map_output(ops.slice(x, np.array([start]), np.array([start + size]), np.array([1]), np.array([1])))
    elif isinstance(spec, DecodeSpec):
        y = ops.result(_decode(x, spec))
    else:  # pragma: no cover - the Spec union is closed
        raise TypeError(type(spec).__name__)
    # the other input maps are read elsewhere too, as in a network (a shortcut's source
    # feeds the next unit): it keeps the plugin from fusing a sum into a helper conv,
    # and gives the model as many outputs as its helpers' reference model
    extra = [_map_output(other) for other in inputs[1:]]
    return ov.Model([y, *extra], params, spec.kind)


def helpers_model(helpers: tuple[ConvSpec, ...]):
    """The helper convs alone, each to its own output: the reference `layer_model`'s
    time is taken against (same inputs, same number of outputs)."""
    import openvino as ov

    params, outputs = [], []
    for i, helper in enumerate(helpers):
        param, x = _map_input(helper.cin, helper.h, helper.w)
        params.append(param)
        outputs.append(_map_output(conv(x, helper, seed=50 + i)))
    return ov.Model(outputs, params, "helpers")


CHAIN_SPEC = ConvSpec(cin=16, cout=16, size=1, stride=1, padding=0, groups=1, h=8, w=8, activation="leaky")
"""The layer `chain_model` repeats: small enough that its own work is a few microseconds."""


def chain_model(k: int):
    """k copies of `CHAIN_SPEC` in a row (k >= 1), channels-last in and out: wall time
    against k is a line whose intercept is the fixed per-inference cost."""
    import openvino as ov

    param, x = _map_input(CHAIN_SPEC.cin, CHAIN_SPEC.h, CHAIN_SPEC.w)
    for i in range(k):
        x = conv(x, CHAIN_SPEC, seed=i)
    return ov.Model([_map_output(x)], [param], f"chain{k}")
