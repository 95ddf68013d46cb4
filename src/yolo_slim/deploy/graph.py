"""Host work moved into the OpenVINO graph: stacking, tiling, letterbox and NMS.

`attach_slots(model, ...)` turns a model whose input is the network-size u8 NHWC
BGR tensor (after `PrePostProcessor`: `[B, H, W, 3]`) into one with an input per
image slot, so the host never copies images into a batch or a mosaic: the graph
stacks the slots along the batch (`layout="batch"`) or tiles them row-major into
one image (`layout="grid"`, the mosaic), before the model's own u8 -> f32 RGB
conversion. A slot is either

- `tile{i}` u8 `[1, th, tw, 3]`: an image letterboxed on the host (OpenCV, resized
  straight into a reusable buffer, `yolo_slim.ops.letterbox.letterbox(out=...)`), or
- with `letterbox=True`, `frame{i}` u8 `[1, h, w, 3]` of any size (the decoder's
  output as it is) and `letterbox{i}` i32 `[4]` (resized height, width, top and
  left padding, from `yolo_slim.ops.letterbox.letterbox_geometry`, so host and
  graph letterbox agree in geometry): the graph resizes (bilinear, half-pixel
  centres, as `cv2.INTER_LINEAR`, to within one grey level) and pads.

Which is cheaper depends on the device: on a CPU, OpenVINO's Interpolate costs
several times OpenCV's resize (`docs/deployment.md` has the figures), so the host
letterbox is the default there; the in-graph one moves the work to an
accelerator.

`PrePostProcessor` (colour, type and layout here) stops short of this:
`PrePostProcessor.resize` stretches to the network size, and its `pad` is static.
"""

from __future__ import annotations

from typing import Literal, Sequence

import numpy as np

from yolo_slim.errors import DeployError
from yolo_slim.ops.letterbox import LetterboxInfo, letterbox_geometry

Layout = Literal["batch", "grid"]
TILE_INPUT = "tile{}"
FRAME_INPUT = "frame{}"
LETTERBOX_INPUT = "letterbox{}"


def letterbox_input(frame_hw: tuple[int, int], tile_hw: tuple[int, int]) -> tuple[np.ndarray, LetterboxInfo]:
    """The `letterbox{i}` input of a frame of `frame_hw`: i32 `[4]` resized height, width, top, left (pixels).

    Returns:
        The vector and the `LetterboxInfo` that maps detections back (as `letterbox` gives).
    """
    info, (resized_h, resized_w) = letterbox_geometry(frame_hw, tile_hw)
    return np.array([resized_h, resized_w, int(info.pad_y), int(info.pad_x)], dtype=np.int32), info


def _letterbox_node(frame, params, tile_hw: tuple[int, int], color: Sequence[int]):
    """Resize `frame` u8 `[1, h, w, 3]` to `params[0:2]` and pad it to `tile_hw` (u8 `[1, th, tw, 3]`)."""
    import openvino.opset13 as ops
    from openvino import opset11

    th, tw = tile_hw
    i64 = ops.convert(params, "i64")
    size = ops.slice(i64, np.array([0]), np.array([2]), np.array([1]))
    resized = opset11.interpolate(
        frame, size, mode="linear_onnx", shape_calculation_mode="sizes", coordinate_transformation_mode="half_pixel",
        axes=np.array([1, 2], dtype=np.int64),
    )
    top_left = ops.slice(i64, np.array([2]), np.array([4]), np.array([1]))
    zero = np.array([0], dtype=np.int64)
    begin = ops.concat([zero, top_left, zero], 0)
    rest = ops.subtract(ops.subtract(np.array([th, tw], dtype=np.int64), size), top_left)
    end = ops.concat([zero, rest, zero], 0)
    if len(set(int(c) for c in color)) == 1:
        padded = ops.pad(resized, begin, end, "constant", np.array(int(color[0]), dtype=np.uint8))
    else:  # Pad takes one value: pad each channel with its own
        channels = [ops.pad(ops.gather(resized, np.array([c], np.int64), np.array(3, np.int64)), begin, end, "constant",
                            np.array(int(color[c]), dtype=np.uint8)) for c in range(3)]
        padded = ops.concat(channels, 3)
    return ops.reshape(padded, np.array([1, th, tw, 3], dtype=np.int64), special_zero=False)


def attach_slots(
    model,
    slots: int,
    tile_hw: tuple[int, int],
    color: Sequence[int],
    layout: Layout = "batch",
    grid: tuple[int, int] | None = None,
    letterbox: bool = False,
):
    """Replace the u8 NHWC network input of `model` by `slots` image inputs (see the module docstring).

    Args:
        model: an `ov.Model` with one static u8 input `[B, H, W, 3]` (BGR, after
            PrePostProcessor).
        slots: image slots per request.
        tile_hw: (height, width) of each slot's letterboxed image, pixels.
        color: letterbox padding value per channel (BGR).
        layout: `batch` (B = slots, H, W = tile) or `grid` (B = 1, tiles row-major).
        grid: (rows, cols) for `grid`; cells past `slots` are filled with `color`.
        letterbox: slots take raw frames and the graph letterboxes them.

    Returns:
        A new `ov.Model` with inputs `tile0, tile1, ...`, or `frame0, letterbox0,
        frame1, letterbox1, ...` with `letterbox`.

    Raises:
        DeployError: the model's input does not fit the layout.
    """
    import openvino as ov
    import openvino.opset13 as ops

    if len(model.inputs) != 1:
        raise DeployError(f"attach_slots: expected a model with one input, it has {len(model.inputs)}")
    if layout not in ("batch", "grid"):
        raise DeployError(f"attach_slots: layout must be 'batch' or 'grid', got {layout!r}")
    old = model.get_parameters()[0]
    th, tw = tile_hw
    rows, cols = grid if layout == "grid" and grid else (slots, 1)
    want = [slots, th, tw, 3] if layout == "batch" else [1, rows * th, cols * tw, 3]
    if layout == "grid" and rows * cols < slots:
        raise DeployError(f"attach_slots: a {rows}x{cols} grid cannot hold {slots} images")
    shape = old.get_output_partial_shape(0)
    if shape.is_dynamic or list(shape.to_shape()) != want or old.get_element_type() != ov.Type.u8:
        raise DeployError(f"attach_slots: the network input is {old.get_element_type()} {shape}, expected u8 {want}")

    def parameter(name: str, shape: list[int], kind):
        p = ops.parameter(ov.PartialShape(shape), kind, name=name)
        p.output(0).get_tensor().set_names({name})
        params.append(p)
        return p

    params: list = []
    tiles = []
    for i in range(slots):
        if letterbox:
            frame = parameter(FRAME_INPUT.format(i), [1, -1, -1, 3], ov.Type.u8)
            tiles.append(_letterbox_node(frame, parameter(LETTERBOX_INPUT.format(i), [4], ov.Type.i32), tile_hw, color))
        else:
            tiles.append(parameter(TILE_INPUT.format(i), [1, th, tw, 3], ov.Type.u8))
    if layout == "batch":
        image = ops.concat(tiles, 0) if slots > 1 else tiles[0]
    else:
        blank = ops.broadcast(np.asarray(color, dtype=np.uint8), np.array([1, th, tw, 3], dtype=np.int64))
        tiles += [blank] * (rows * cols - slots)
        image = ops.concat([ops.concat(tiles[r * cols : (r + 1) * cols], 2) for r in range(rows)], 1)
    for target in list(old.output(0).get_target_inputs()):
        target.replace_source_output(image.output(0))
    return ov.Model(model.get_results(), params, model.get_friendly_name())
