"""NaN/inf weights are refused wherever they are loaded (.weights, .ckpt, IR), parity
fails on NaN, and hostile checkpoints are refused in one line without unpickling."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from yolo_slim.__main__ import main
from yolo_slim.darknet.cfg import load_cfg
from yolo_slim.darknet.weights import BN_PARTS, WeightsHeader, conv_layout, read_darknet_weights
from yolo_slim.errors import ExportError, WeightsError
from yolo_slim.io.checkpoint import read_checkpoint, write_model_checkpoint
from yolo_slim.io.finite import check_finite_arrays, check_ir_finite, first_nonfinite
from yolo_slim.model import Darknet, load_model

CFG = load_cfg("yolov3-tiny", classes=1, img_size=64)


def nan_weights(tmp_path: Path, value: float = float("nan")) -> Path:
    """A .weights file of the right size for CFG, every float `value` (the issue's file)."""
    count = sum(r.count for r in conv_layout(CFG))
    path = tmp_path / "nan.weights"
    path.write_bytes(WeightsHeader().to_bytes() + np.full(count, value, "<f4").tobytes())
    return path


def test_all_nan_weights_name_the_file_and_the_first_offset(tmp_path: Path) -> None:
    path = nan_weights(tmp_path)
    n = sum(r.count for r in conv_layout(CFG))
    with pytest.raises(WeightsError, match=rf"nan.weights: byte offset 20: nan where a finite float32 is expected in conv layer 0 beta \(value 0 of 16\); {n:,} of {n:,} values are non-finite \(nan\)"):
        read_darknet_weights(path, CFG)


def test_one_inf_deep_in_the_file_is_located(tmp_path: Path, random_arrays) -> None:
    arrays = random_arrays(CFG)
    layout = conv_layout(CFG)
    record = layout[5]
    arrays[record.layer]["gamma"][3] = np.inf
    model = Darknet(CFG)
    from yolo_slim.darknet.weights import write_darknet_weights

    path = write_darknet_weights(tmp_path / "one.weights", CFG, arrays)
    before = sum(r.count for r in layout[:5]) + record.filters + 3  # beta, then gamma[3]
    with pytest.raises(WeightsError, match=rf"byte offset {20 + 4 * before:,}: inf .* in conv layer {record.layer} gamma \(value 3 of {record.filters}\); 1 of [\d,]+ values are non-finite \(inf\)"):
        model.load_darknet_weights(path)
    assert BN_PARTS[1] == "gamma"


def test_sparsity_command_refuses_nan_weights(tmp_path: Path, capsys) -> None:
    """The issue: `python -m yolo_slim sparsity CFG nan.weights` printed `mean |gamma| : nan` and exited 0."""
    cfg = CFG
    Darknet(cfg).to_cfg(tmp_path / "m.cfg")
    assert main(["sparsity", str(tmp_path / "m.cfg"), str(nan_weights(tmp_path))]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "nan.weights: byte offset 20" in err[0]


def test_checkpoint_with_nan_tensor_is_refused(tmp_path: Path) -> None:
    model = Darknet(CFG)
    state = model.state_dict()
    name = "layers.4.bn.running_var"
    state[name][2] = float("nan")
    path = write_model_checkpoint(tmp_path / "bad.ckpt", state, "")
    with pytest.raises(WeightsError, match=rf"bad.ckpt: tensor model.{name} holds NaN/inf: 1 of {state[name].numel()} values are non-finite \(nan\), the first at flat index 2"):
        read_checkpoint(path)
    with pytest.raises(WeightsError, match=r"bad.ckpt: tensor model.layers.4"):
        load_model(CFG, path)


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("container", ["zip", "plain pickle"])
def test_hostile_checkpoint_is_refused_in_one_line_and_not_run(tmp_path: Path, container: str) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.ckpt"
    payload = {"state_dict": {}, "hyper_parameters": _Payload(marker)}
    if container == "zip":
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload, protocol=4))
    with pytest.raises(WeightsError) as info:
        read_checkpoint(path)
    message = str(info.value)
    assert "\n" not in message and "weights_only" not in message
    if container == "zip":  # torch names the object it refused
        assert message == (
            f"{path}: not a yolo_slim checkpoint: it asks to build the Python object posix.system, and yolo_slim will not "
            "unpickle it (a checkpoint holds tensors and plain containers only)"
        )
    else:
        assert message == f"{path}: not a yolo_slim checkpoint (not a torch.save file of tensors, or corrupted); it will not be unpickled"
    assert not marker.exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", r"empty.ckpt: not a readable checkpoint \(EOFError"),
        (b"\x00garbage" * 10, r"empty.ckpt: not a yolo_slim checkpoint \(not a torch.save file of tensors, or corrupted\); it will not be unpickled$"),
        (b"PK\x03\x04truncated zip", r"empty.ckpt: not a readable checkpoint \(RuntimeError: PytorchStreamReader failed"),
    ],
)
def test_garbage_checkpoints_give_one_line(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "empty.ckpt"
    path.write_bytes(content)
    with pytest.raises(WeightsError, match=message) as info:
        read_checkpoint(path)
    assert "\n" not in str(info.value)


def test_checkpoint_without_state_dict(tmp_path: Path) -> None:
    path = tmp_path / "other.ckpt"
    torch.save({"model": torch.zeros(2)}, path)
    with pytest.raises(WeightsError, match=r"other.ckpt: not a yolo_slim checkpoint \(a Lightning checkpoint with a 'state_dict' of tensors\)"):
        read_checkpoint(path)


def test_finite_helpers() -> None:
    assert first_nonfinite(np.array([1.0, 2.0])) is None
    assert first_nonfinite(np.array([[1.0, np.inf], [np.nan, 0.0]])) == 1
    assert first_nonfinite(np.array([1, 2])) is None  # integers are always finite
    check_finite_arrays([("a", torch.ones(3, dtype=torch.bfloat16))], "x")
    with pytest.raises(WeightsError, match=r"x: tensor b holds NaN/inf: 1 of 3 values are non-finite \(nan\), the first at flat index 1; retry"):
        check_finite_arrays([("a", torch.ones(2)), ("b", torch.tensor([0.0, float("nan"), 1.0]))], "x", "retry")


def test_ir_constants_are_checked() -> None:
    import openvino as ov
    import openvino.opset13 as ops

    x = ops.parameter([1, 3], np.float32, name="x")
    good = ov.Model([ops.result(ops.add(x, ops.constant(np.ones((1, 3), np.float32))))], [x])
    check_ir_finite(good, "good.xml")
    pad = ops.constant(np.array(-np.inf, np.float32))  # darknet's maxpool pads with -inf: a legitimate scalar
    check_ir_finite(ov.Model([ops.result(ops.maximum(x, pad))], [x]), "pad.xml")
    weight = ops.constant(np.array([[1.0, np.inf, 1.0]], np.float32))
    with pytest.raises(WeightsError, match=r"inf.xml: tensor .* holds NaN/inf: 1 of 3 values are non-finite \(inf\)"):
        check_ir_finite(ov.Model([ops.result(ops.multiply(x, weight))], [x]), "inf.xml")
    bias = ops.constant(np.array([[0.0, np.nan, 1.0]], np.float32))
    bias.set_friendly_name("head.bias")
    bad = ov.Model([ops.result(ops.add(x, bias))], [x])
    with pytest.raises(WeightsError, match=r"bad.xml: tensor head.bias holds NaN/inf: 1 of 3 values are non-finite \(nan\), the first at flat index 1; the model was exported"):
        check_ir_finite(bad, "bad.xml")


def test_parity_fails_on_nan_even_where_both_sides_agree() -> None:
    from yolo_slim.export.parity import compare_decoded

    ref = np.ones((1, 4, 7))
    assert compare_decoded(ref, ref + 1e-6, 1e-4, "onnxruntime").ok
    both = ref.copy()
    both[0, 1, 2] = np.nan
    with pytest.raises(ExportError, match=r"onnxruntime: parity check failed: PyTorch's reference output holds NaN/inf \(1 of 28 values are non-finite \(nan\)\)"):
        compare_decoded(both, both.copy(), 1e-4, "onnxruntime")
    out = ref.copy()
    out[0, 0, 0] = np.inf
    with pytest.raises(ExportError, match=r"openvino: parity check failed: the openvino output holds NaN/inf \(1 of 28 values are non-finite \(inf\)\)"):
        compare_decoded(ref, out, 1e-4, "openvino")
