"""export(cfg): ONNX + IR parity against PyTorch, pruned-like and split-route cfgs, batch > 1, fp16/int8, in-graph NMS, meta.json."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from app_configs import compose_config
from fixtures.cfg_texts import cfg_text, conv, head, maxpool, net, route, shortcut, upsample

pytestmark = pytest.mark.openvino

ROOT = Path(__file__).parents[3]

ODD_ANCHORS = "8,8, 12,16, 20,20, 30,30, 40,48, 60,60"
# a "pruned" cfg: odd channel counts, a residual shortcut, a route concat, upsample and two heads
ODD_CFG = cfg_text(
    net(96),
    conv(5, stride=2),
    conv(11, stride=2, activation="mish"),
    conv(3, 1),
    conv(11),
    shortcut(-3),
    maxpool(2, 2),
    conv(13),
    head(mask="3,4,5", anchors=ODD_ANCHORS, num=6, pad=True),
    route("-3"),
    upsample(2),
    route("-1,4"),
    head(mask="0,1,2", anchors=ODD_ANCHORS, num=6, pad=True),
)


def _cfg(tmp: Path, model: str, img_size: int | None = None, **export):
    """The real export config for `model`, writing into tmp/out; `export` sets export.* keys."""
    return compose_config("export", values={"model": {"cfg": model}, "img_size": img_size, "paths": {"output_dir": str(tmp / "out")}, "export": export})


def _random_bn(model):
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for block in model.conv_blocks().values():
            if block.bn is not None:
                block.bn.running_mean.copy_(torch.randn(block.bn.num_features, generator=g) * 0.1)
                block.bn.running_var.copy_(torch.rand(block.bn.num_features, generator=g) + 0.5)


def _ir_output(xml: Path, x: np.ndarray) -> np.ndarray:
    from yolo_slim.openvino_core import compile_model, core

    model = core().read_model(str(xml))
    model.reshape({0: list(x.shape)})
    return compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})(x)[0]


def _check_ir_parity(model, xml: Path, batch: int, hw: int, tol: float = 1e-3):
    from yolo_slim.export.parity import compare_decoded

    x = torch.rand(batch, 3, hw, hw, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        ref = model.eval()(x).numpy()
    report = compare_decoded(ref, _ir_output(xml, x.numpy()), tol, "openvino")
    assert report.ok, report
    return report


def test_odd_channel_cfg_dynamo_dynamic_batch(tmp_path):
    """The default (dynamo) exporter on a pruned-like cfg; meta.json round trip; IR at batch 3."""
    from yolo_slim.darknet.cfg import parse_cfg
    from yolo_slim.export.meta import cfg_sha256, read_meta
    from yolo_slim.model import Darknet

    cfg_path = tmp_path / "odd.cfg"
    cfg_path.write_text(ODD_CFG)
    model = Darknet.from_cfg(cfg_path, img_size=96)
    _random_bn(model)
    weights = tmp_path / "odd.weights"
    model.save_darknet_weights(weights)
    cfg = _cfg(tmp_path, str(cfg_path), batch=2, dynamic=["batch"], exporter="dynamo")  # img_size: the cfg's 96
    cfg.weights = str(weights)
    cfg.names = ["cat", "dog"]
    from yolo_slim.export.task import export

    metrics, artifacts = export(cfg)
    assert metrics["export/onnx_parity/ok"] == 1.0 and metrics["export/onnx_parity/rel_error"] <= 1e-4
    assert metrics["export/ir_parity/ok"] == 1.0
    import onnx

    onnx.checker.check_model(onnx.load(str(artifacts["onnx"])))
    assert not list(artifacts["onnx"].parent.glob("*.data"))  # single file
    meta = read_meta(artifacts["meta"])
    assert meta["names"] == ["cat", "dog"] and meta["input_size"] == [96, 96]
    assert meta["strides"] == [[8.0, 8.0], [4.0, 4.0]]  # from feature maps, not the file name
    assert meta["anchors"][0] == [[30.0, 30.0], [40.0, 48.0], [60.0, 60.0]]
    assert meta["cfg_sha256"] == cfg_sha256(parse_cfg(cfg_path)) and meta["random_init"] is False
    assert meta["precision"] == "fp32" and meta["nms_in_graph"] is False
    _check_ir_parity(model, artifacts["xml"], batch=3, hw=96)


def test_yolov4_tiny_split_routes_batch2(tmp_path):
    from yolo_slim.export.task import export
    from yolo_slim.model import Darknet

    cfg = _cfg(tmp_path, "yolov4-tiny", img_size=64, batch=2, exporter="torchscript")
    cfg.model.classes = 3
    metrics, artifacts = export(cfg)
    assert metrics["export/onnx_parity/ok"] == 1.0
    meta = json.loads(artifacts["meta"].read_text())
    assert meta["random_init"] is True and meta["weights"] is None and meta["num_classes"] == 3
    assert meta["strides"] == [[32.0, 32.0], [16.0, 16.0]]
    torch.manual_seed(0)
    model = Darknet.from_cfg("yolov4-tiny", classes=3, img_size=64)
    # export seeded the same way, so the random init is identical
    _check_ir_parity(model, artifacts["xml"], batch=2, hw=64)


def test_checkpoint_exports_its_ema_weights_at_its_training_size(tmp_path):
    """`export.py weights=last.ckpt` with no model.cfg: the checkpoint's own cfg (trained at 96 px) and its EMA weights."""
    from yolo_slim.darknet.cfg import parse_cfg_text, with_input_size, write_cfg_text
    from yolo_slim.export.meta import read_meta
    from yolo_slim.export.task import export
    from yolo_slim.io.checkpoint import CFG_KEY
    from yolo_slim.model import Darknet

    trained = with_input_size(parse_cfg_text(ODD_CFG), 96)
    raw, ema = Darknet(trained), Darknet(trained)
    _random_bn(ema)
    torch.manual_seed(5)
    for p in ema.parameters():  # EMA weights clearly unlike the raw ones
        p.data.normal_(0.0, 0.3)
    state = {**{f"model.{k}": v for k, v in raw.state_dict().items()}, **{f"ema.module.{k}": v for k, v in ema.state_dict().items()}}
    ckpt = tmp_path / "last.ckpt"
    torch.save({"state_dict": state, CFG_KEY: write_cfg_text(trained)}, ckpt)
    cfg = _cfg(tmp_path, None, exporter="torchscript")
    cfg.weights = str(ckpt)
    metrics, artifacts = export(cfg)
    assert metrics["export/ir_parity/ok"] == 1.0
    meta = read_meta(artifacts["meta"])
    assert meta["input_size"] == [96, 96] and meta["weights"] == str(ckpt) and meta["random_init"] is False
    _check_ir_parity(ema, artifacts["xml"], batch=1, hw=96)
    x = torch.rand(1, 3, 96, 96, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert not np.allclose(raw.eval()(x).numpy(), _ir_output(artifacts["xml"], x.numpy()), atol=1e-2)  # not the raw weights


def _image_folder(tmp: Path, n: int = 6) -> Path:
    folder = tmp / "calib"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        cv2.imwrite(str(folder / f"{i}.png"), rng.integers(0, 255, (80, 100, 3), dtype=np.uint8))
    return folder


@pytest.mark.slow
def test_fp16_and_graph_nms(tmp_path):
    """FP16 weight compression; in-graph NMS against host NMS on the FP32 IR the FP16 export writes beside (two exports, ~15 s)."""
    import shutil

    import openvino as ov

    from yolo_slim.deploy.detector import OpenVINODetector
    from yolo_slim.export.task import export

    cfg_path = tmp_path / "odd.cfg"
    cfg_path.write_text(ODD_CFG)
    folder = _image_folder(tmp_path)
    base = _cfg(tmp_path, str(cfg_path), img_size=96, exporter="torchscript", formats=["openvino"])
    base.data = str(folder)

    fp16 = base.copy()
    fp16.export.precision, fp16.paths.output_dir = "fp16", str(tmp_path / "fp16")
    _, art16 = export(fp16)
    assert "onnx" not in art16
    consts = [op for op in ov.Core().read_model(str(art16["xml"])).get_ops() if op.get_type_name() == "Constant"]
    assert any(op.get_element_type() == ov.Type.f16 for op in consts)
    host_xml = art16["xml_fp32"]
    shutil.copy(art16["meta"], host_xml.parent / "meta.json")  # same model, host NMS; precision is informational

    nms = base.copy()
    nms.export.update({"nms": "graph", "conf_thres": 0.2})
    nms.paths.output_dir = str(tmp_path / "nms")
    _, artn = export(nms)
    img = cv2.imread(str(next(folder.iterdir())))
    graph_det = OpenVINODetector(artn["xml"])
    assert graph_det.nms_in_graph
    in_graph = graph_det.detect(img)
    on_host = OpenVINODetector(host_xml, conf_thres=0.2).detect(img)
    assert len(in_graph) == len(on_host) > 0
    order = lambda d: d[np.lexsort((d[:, 0], -d[:, 4]))]
    np.testing.assert_allclose(order(in_graph), order(on_host), atol=1e-2)


@pytest.mark.slow
def test_int8_quantization(tmp_path):
    """NNCF INT8 with calibration images from a folder; the decode stays float (about 30 s)."""
    import openvino as ov

    from yolo_slim.export.task import export

    cfg_path = tmp_path / "odd.cfg"
    cfg_path.write_text(ODD_CFG)
    base = _cfg(tmp_path, str(cfg_path), img_size=96, exporter="torchscript", formats=["openvino"])
    base.data = str(_image_folder(tmp_path))
    int8 = base.copy()
    int8.export.update({"precision": "int8", "calibration_images": 4})
    int8.paths.output_dir = str(tmp_path / "int8")
    metrics, art8 = export(int8)
    assert metrics["export/calibration_images"] == 4
    types = {op.get_type_name() for op in ov.Core().read_model(str(art8["xml"])).get_ops()}
    assert "FakeQuantize" in types
    assert json.loads(art8["meta"].read_text())["precision"] == "int8"
    assert (art8["xml_fp32"]).is_file()

    from yolo_slim.export.quantize import decode_node_names

    q = ov.Core().read_model(str(art8["xml"]))
    fq_inputs = {n.get_friendly_name() for op in q.get_ops() if op.get_type_name() == "FakeQuantize" for n in [op.output(0).get_target_inputs().pop().get_node()]}
    assert not fq_inputs & set(decode_node_names(q))


def test_bad_options(tmp_path):
    from yolo_slim.errors import ConfigError, ExportError, YoloSlimError
    from yolo_slim.export.task import export

    with pytest.raises(ConfigError, match=r"export.py needs model.cfg=NAME_OR_PATH \(a zoo name or .cfg file\), or weights=PATH.ckpt"):
        export(_cfg(tmp_path, None))
    with pytest.raises(YoloSlimError, match=r"img_size=100: input size 100x100 is not a multiple of 32, the network's largest stride"):
        export(_cfg(tmp_path, "yolov4-tiny", img_size=100))
    with pytest.raises(ConfigError, match="export.precision"):
        export(_cfg(tmp_path, "yolov4-tiny", precision="int4"))
    with pytest.raises(ConfigError, match="export.formats"):
        export(_cfg(tmp_path, "yolov4-tiny", formats=["tflite"]))
    with pytest.raises(ConfigError, match="needs calibration images"):
        export(_cfg(tmp_path, "yolov4-tiny", img_size=64, precision="int8", exporter="torchscript"))
    with pytest.raises(ExportError, match="unknown dynamic axes"):
        export(_cfg(tmp_path, "yolov4-tiny", img_size=64, dynamic=["channels"]))
