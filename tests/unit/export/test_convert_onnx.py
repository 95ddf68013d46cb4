"""`convert_onnx` takes any ONNX path, a comma in it included, and gives the same graph."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from yolo_slim.export.openvino import convert_onnx


@pytest.mark.openvino
def test_a_comma_in_the_path_converts_the_same_model(tmp_path: Path) -> None:
    import openvino as ov

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.LeakyReLU(0.1)).eval()
    x = torch.rand(1, 3, 8, 8)
    outs = []
    for folder in ("plain", "latency, measured"):
        path = tmp_path / folder / "model.onnx"
        path.parent.mkdir()
        torch.onnx.export(net, x, str(path), dynamo=False)
        compiled = ov.Core().compile_model(convert_onnx(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        outs.append(compiled(x.numpy())[0])
    np.testing.assert_allclose(outs[1], outs[0], rtol=0, atol=0)
    np.testing.assert_allclose(outs[0], net(x).detach().numpy(), atol=1e-5)
