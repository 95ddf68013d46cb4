"""The `Darknet` module (`yolo_slim.model`): built from the cfg, loaded from `.weights`.

The oracle is OpenCV's darknet importer (opencv 4.x): it reads the cfg our writer
wrote and the `.weights` our writer wrote, runs the network, and must give the same
head maps and the same decoded boxes, to float32 rounding.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from yolo_slim.darknet.cfg import DarknetCfg, load_cfg, parse_cfg_text, write_cfg
from yolo_slim.darknet.sections import YoloSection
from yolo_slim.darknet.weights import WeightsHeader, read_darknet_weights
from yolo_slim.darknet.zoo import zoo_cfg_text
from yolo_slim.errors import CfgError
from yolo_slim.model import Darknet
from yolo_slim.model.yolo_head import YoloHead

cv2 = pytest.importorskip("cv2")


def opencv_net(cfg_path: Path, weights_path: Path):
    if not hasattr(cv2.dnn, "readNetFromDarknet"):
        pytest.skip("this OpenCV has no darknet importer (removed in 5.0)")
    net = cv2.dnn.readNetFromDarknet(str(cfg_path), str(weights_path))
    if hasattr(net, "enableWinograd"):
        net.enableWinograd(False)  # its fast 3x3 convolution rounds more coarsely
    return net


def assert_close(ours: np.ndarray, theirs: np.ndarray, what: str, rel: float) -> None:
    """Equal up to float32 rounding, relative to the size of the values."""
    assert ours.shape == theirs.shape, what
    scale = max(1.0, float(np.abs(theirs).max()))
    err = float(np.abs(ours - theirs).max())
    assert err <= rel * scale, f"{what}: max abs difference {err:.3g} at value scale {scale:.3g}"


def calibrated_weights(cfg: DarknetCfg, path: Path, random_weights: Callable[..., Path]) -> Path:
    """Seeded random weights with BatchNorm statistics measured on a batch, as training
    leaves them.

    With arbitrary running statistics a deep network's heads either stop depending
    on the input or overflow; measured ones keep every layer normalised, so the
    comparison sees the input's signal. Each BN conv's kernel and mean are then scaled
    by 10 and its variance by 100, which leaves the outputs unchanged but makes the
    BatchNorm epsilon (1e-5 here and in darknet, 1e-6 in OpenCV) negligible.
    """
    model = Darknet(cfg)
    model.load_darknet_weights(random_weights(cfg, seed=3))
    for block in model.conv_blocks().values():
        if block.bn is not None:
            block.bn.reset_running_stats()
            block.bn.momentum = None  # a plain average: one batch gives its statistics
    h, w = cfg.input_hw
    with torch.no_grad():
        model.train()(torch.rand(8, cfg.net.channels, h, w, generator=torch.Generator().manual_seed(5)))
        for block in model.conv_blocks().values():
            if block.bn is not None:
                block.conv.weight *= 10
                block.bn.running_mean *= 10
                block.bn.running_var *= 100
    return model.save_darknet_weights(path)


def check_against_opencv(cfg: DarknetCfg, tmp_path: Path, random_weights: Callable[..., Path], rel: float = 1e-4) -> None:
    """Head maps and decoded outputs equal OpenCV's within `rel` of the value scale.

    The two differ only in float32 summation order (and OpenCV folds BatchNorm into
    the kernels), an error that grows with depth: about 1e-5 after 20 layers and
    3e-4 after yolov4's 110 convs; a wrong layer is off by order 1.
    """
    cfg_path = write_cfg(cfg, tmp_path / "model.cfg")
    weights = calibrated_weights(cfg, tmp_path / "model.weights", random_weights)
    model = Darknet(cfg)
    model.load_darknet_weights(weights)
    model.eval()
    h, w = cfg.input_hw
    x = np.random.default_rng(4).uniform(0.0, 1.0, (2, cfg.net.channels, h, w)).astype(np.float32)
    with torch.no_grad():
        maps = [m.numpy() for m in model.forward_maps(torch.from_numpy(x))]
        decoded = model(torch.from_numpy(x)).numpy()

    net = opencv_net(cfg_path, weights)
    net.setInput(x)
    heads = cfg.yolo_ids()
    outs = net.forward([f"conv_{i - 1}" for i in heads] + [f"yolo_{i}" for i in heads])

    # 1. The raw head maps: every layer of the network feeds one of them, and they
    # depend on the input (not only on the biases).
    for i, ours, theirs in zip(heads, maps, outs[: len(heads)]):
        assert_close(ours, theirs, f"head map of layer {i}", rel)
        assert np.abs(ours[0] - ours[1]).mean() > 0.05 * np.abs(ours).mean(), f"head {i} ignores its input"

    # 2. Decoding. OpenCV rows are (batch, y, x, anchor) with boxes divided by the
    # input size and class scores multiplied by objectness (zeroed below a threshold);
    # ours are (batch, anchor, y, x) in pixels with plain class probabilities.
    start = 0
    for i, theirs in zip(heads, outs[len(heads) :]):
        head: YoloSection = cfg.layers[i]
        a, gh, gw, n = len(head.mask), *maps[heads.index(i)].shape[2:], head.classes + 5
        ours = decoded[:, start : start + a * gh * gw].reshape(-1, a, gh, gw, n).transpose(0, 2, 3, 1, 4).reshape(-1, n)
        start += a * gh * gw
        ours = ours / np.array([w, h, w, h] + [1] * (n - 4), dtype=np.float32)
        theirs = theirs.reshape(-1, n)
        assert_close(ours[:, :5], theirs[:, :5], f"boxes and objectness of head {i}", rel)
        scores = ours[:, 4:5] * ours[:, 5:]
        kept = theirs[:, 5:] > 0
        assert kept.any()
        assert_close(scores[kept], theirs[:, 5:][kept], f"class scores of head {i}", rel)
    assert start == decoded.shape[1]


def test_every_layer_fixture_matches_opencv(tmp_path: Path, fixture_path, random_weights) -> None:
    """Mish, Swish, ReLU, logistic, grouped conv, explicit padding, shortcut, split
    route, absolute route, SPP and tiny pools, upsample, scale_x_y, rectangular input."""
    check_against_opencv(load_cfg(fixture_path("every_layer.cfg")), tmp_path, random_weights)


@pytest.mark.parametrize(
    ("name", "img_size"), [("yolov3-tiny", 128), ("yolov4-tiny", (160, 96)), ("yolov4-tiny-3l", 128)], ids=str
)
def test_tiny_zoo_matches_opencv(name: str, img_size: int | tuple[int, int], tmp_path: Path, random_weights) -> None:
    cfg = parse_cfg_text(zoo_cfg_text(name, classes=3, img_size=img_size))  # img_size: width, height
    check_against_opencv(cfg, tmp_path, random_weights)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["yolov3", "yolov3-spp", "yolov4"])
def test_full_zoo_matches_opencv(name: str, tmp_path: Path, random_weights) -> None:
    check_against_opencv(parse_cfg_text(zoo_cfg_text(name, classes=3, img_size=128)), tmp_path, random_weights, rel=1e-3)


def test_upstream_yolov4_tiny_file_matches_opencv(tmp_path: Path, upstream_cfg, random_weights) -> None:
    check_against_opencv(load_cfg(upstream_cfg("yolov4-tiny"), classes=2, img_size=128), tmp_path, random_weights)


# --------------------------------------------------------------------------- outputs


def test_train_and_eval_outputs() -> None:
    model = Darknet.from_cfg("yolov4-tiny", classes=2, img_size=128)
    x = torch.rand(2, 3, 128, 128)
    raw = model.train()(x)
    assert [tuple(t.shape) for t in raw] == [(2, 3, 4, 4, 7), (2, 3, 8, 8, 7)]
    with torch.no_grad():
        out = model.eval()(x)
    assert out.shape == (2, 3 * (16 + 64), 7)
    # any size the strides divide, not only the cfg's
    with torch.no_grad():
        assert model(torch.rand(1, 3, 96, 160)).shape == (1, 3 * (3 * 5 + 6 * 10), 7)


def test_decode_uses_the_feature_map_stride() -> None:
    """Zero maps put every box at its cell centre with the anchor's size, whatever
    the input size: the stride comes from input size / grid size."""
    section = YoloSection(mask=(1,), anchors=((10.0, 20.0), (30.0, 40.0)), classes=1, num=2, scale_x_y=1.2)
    head = YoloHead(section)
    for (h, w), (gh, gw) in [((64, 96), (4, 6)), ((64, 96), (8, 12)), ((100, 50), (5, 5))]:
        out = head.decode(torch.zeros(1, 6, gh, gw), (h, w))[0]
        sy, sx = h / gh, w / gw
        gy, gx = torch.meshgrid(torch.arange(gh), torch.arange(gw), indexing="ij")
        torch.testing.assert_close(out[:, 0], ((gx.flatten() + 0.5) * sx).float())
        torch.testing.assert_close(out[:, 1], ((gy.flatten() + 0.5) * sy).float())
        torch.testing.assert_close(out[:, 2:4], torch.tensor([[30.0, 40.0]]).expand(gh * gw, 2))
        torch.testing.assert_close(out[:, 4:], torch.full((gh * gw, 2), 0.5))


def test_decode_new_coords_by_hand() -> None:
    """Scaled-YOLOv4's parameterisation (new_coords=1): the conv's logistic already
    squashed the values; x = (t * k - (k - 1) / 2 + gx) * stride, w = 4 t^2 anchor."""
    section = YoloSection(mask=(0,), anchors=((16.0, 8.0),), classes=1, num=1, scale_x_y=2.0, new_coords=1)
    t = torch.tensor([0.75, 0.25, 0.5, 1.0, 0.9, 0.2]).view(1, 6, 1, 1)
    out = YoloHead(section).decode(t, (32, 32))[0, 0]
    expected = [(0.75 * 2 - 0.5) * 32, (0.25 * 2 - 0.5) * 32, 4 * 0.25 * 16, 4 * 1.0 * 8, 0.9, 0.2]
    torch.testing.assert_close(out, torch.tensor(expected))


def test_a_bf16_head_map_decodes_in_float32() -> None:
    """Under bf16 autocast the head map is bf16; decoded in bf16, a centre in the last
    cell of a 32-cell grid at 256 px would land up to 1 px off. The decode is float32."""
    section = YoloSection(mask=(0,), anchors=((16.0, 8.0),), classes=1, num=1, scale_x_y=2.0)
    t = torch.zeros(1, 6, 32, 32)
    t[:, 0] = 0.3  # sigmoid(0.3) = 0.5744: x = (0.5744 * 2 - 0.5 + gx) * 8
    out = YoloHead(section).decode(t.bfloat16(), (256, 256))[0]
    assert out.dtype == torch.float32
    expected = (torch.sigmoid(torch.tensor(0.3).bfloat16().float()) * 2 - 0.5 + torch.arange(32.0)) * 8
    torch.testing.assert_close(out[:32, 0], expected, atol=1e-4, rtol=0)


# --------------------------------------------------------------------------- darknet files


def test_save_reproduces_the_loaded_file(tmp_path: Path, random_weights) -> None:
    cfg = load_cfg("yolov4-tiny", classes=2, img_size=128)
    source = random_weights(cfg, header=WeightsHeader(0, 2, 5, 32013312))
    model = Darknet(cfg)
    header = model.load_darknet_weights(source)
    assert header.seen == 32013312
    saved = model.save_darknet_weights(tmp_path / "saved.weights")
    assert saved.read_bytes() == source.read_bytes()


def test_loaded_tensors_land_in_the_right_modules(tmp_path: Path, fixture_path, random_weights) -> None:
    cfg = load_cfg(fixture_path("every_layer.cfg"))
    path = random_weights(cfg)
    _, arrays = read_darknet_weights(path, cfg)
    model = Darknet(cfg)
    model.load_darknet_weights(path)
    state = model.state_dict()
    np.testing.assert_array_equal(state["layers.1.conv.weight"].numpy(), arrays[1]["weight"])
    assert state["layers.1.conv.weight"].shape == (32, 8, 3, 3)  # groups=2
    np.testing.assert_array_equal(state["layers.1.bn.weight"].numpy(), arrays[1]["gamma"])
    np.testing.assert_array_equal(state["layers.1.bn.bias"].numpy(), arrays[1]["beta"])
    np.testing.assert_array_equal(state["layers.1.bn.running_var"].numpy(), arrays[1]["running_var"])
    np.testing.assert_array_equal(state["layers.11.conv.bias"].numpy(), arrays[11]["bias"])
    assert "layers.11.bn.weight" not in state


def test_state_dict_names_are_stable() -> None:
    keys = list(Darknet.from_cfg("yolov3-tiny", classes=1).state_dict())
    assert keys[:6] == [
        "layers.0.conv.weight",
        "layers.0.bn.weight",
        "layers.0.bn.bias",
        "layers.0.bn.running_mean",
        "layers.0.bn.running_var",
        "layers.0.bn.num_batches_tracked",
    ]
    assert keys[-2:] == ["layers.22.conv.weight", "layers.22.conv.bias"]


def test_cutoff_loads_only_the_backbone(tmp_path: Path, random_weights) -> None:
    cfg = load_cfg("yolov4-tiny", classes=2)
    model = Darknet(cfg)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.load_darknet_weights(random_weights(cfg), cutoff=29)
    after = model.state_dict()
    assert not torch.equal(after["layers.28.conv.weight"], before["layers.28.conv.weight"])
    assert torch.equal(after["layers.29.conv.weight"], before["layers.29.conv.weight"])


def test_to_cfg_round_trips(tmp_path: Path) -> None:
    model = Darknet.from_cfg("yolov4-tiny", classes=2, img_size=256)
    rebuilt = Darknet.from_cfg(model.to_cfg(tmp_path / "m.cfg"))
    assert rebuilt.cfg == model.cfg
    assert [tuple(v.shape) for v in rebuilt.state_dict().values()] == [tuple(v.shape) for v in model.state_dict().values()]


def test_unknown_model_name() -> None:
    with pytest.raises(CfgError, match=r"yolov9-tiny: no such cfg file, and not a model-zoo name"):
        Darknet.from_cfg("yolov9-tiny")
