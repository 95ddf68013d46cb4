"""resolve_img_size: the one input size is img_size when given, else the model's own; two sizes that disagree stop."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from yolo_slim.config.sizes import resolve_img_size
from yolo_slim.darknet.shapes import max_stride
from yolo_slim.darknet.cfg import load_cfg, with_input_size, write_cfg_text
from yolo_slim.errors import ConfigError, YoloSlimError
from yolo_slim.io.checkpoint import CFG_KEY


def _cfg_file(tmp: Path, size: int, name: str = "model.cfg") -> Path:
    path = tmp / name
    path.write_text(write_cfg_text(load_cfg("yolov4-tiny", classes=2, img_size=size)))
    return path


def _ckpt(tmp: Path, size: int) -> Path:
    path = tmp / f"trained{size}.ckpt"
    torch.save({"state_dict": {}, CFG_KEY: write_cfg_text(load_cfg("yolov4-tiny", classes=2, img_size=size))}, path)
    return path


def test_the_model_size_is_the_cfg_net_size_unless_given(tmp_path: Path) -> None:
    assert resolve_img_size(None, "yolov4-tiny") == 416  # the zoo cfg's [net]
    assert resolve_img_size(None, str(_cfg_file(tmp_path, 96))) == 96  # a cfg written by a run at 96 px
    assert resolve_img_size(256, str(_cfg_file(tmp_path, 96))) == 256
    assert max_stride(load_cfg("yolov4-tiny")) == 32 and max_stride(load_cfg("yolov3")) == 32


def test_a_checkpoint_carries_the_size_it_was_trained_at(tmp_path: Path) -> None:
    ckpt = _ckpt(tmp_path, 128)
    assert resolve_img_size(None, None, str(ckpt)) == 128
    assert resolve_img_size(None, str(_cfg_file(tmp_path, 128)), str(ckpt)) == 128
    with pytest.raises(ConfigError, match=r"^the \[net\] size of yolov4-tiny is 416 but the size .*trained128.ckpt was trained at is 128; "
                                          r"give img_size=N to choose$"):
        resolve_img_size(None, "yolov4-tiny", str(ckpt))
    assert resolve_img_size(416, "yolov4-tiny", str(ckpt)) == 416  # given: the user chose


def test_a_resumed_run_keeps_its_size(tmp_path: Path) -> None:
    ckpt = _ckpt(tmp_path, 160)
    assert resolve_img_size(None, "yolov4-tiny", resume=str(ckpt)) == 160
    with pytest.raises(ConfigError, match=r"^img_size=320 but the size .* was trained at is 160; a resumed run keeps its size"):
        resolve_img_size(320, "yolov4-tiny", resume=str(ckpt))


def test_sizes_are_multiples_of_the_largest_stride() -> None:
    with pytest.raises(YoloSlimError, match=r"^img_size=100: input size 100x100 is not a multiple of 32, the network's largest stride .*; use e.g. 96x96"):
        resolve_img_size(100, "yolov4-tiny")
    with pytest.raises(YoloSlimError, match=r"^img_size=16: input size 16x16 is outside 32..8192 pixels"):
        resolve_img_size(16, "yolov4-tiny")


def test_no_model_and_non_square_cfgs_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^no model: give model.cfg=NAME_OR_PATH"):
        resolve_img_size(None, None, "best.weights")
    wide = tmp_path / "wide.cfg"
    wide.write_text(write_cfg_text(with_input_size(load_cfg("yolov4-tiny"), 320, 416)))
    with pytest.raises(ConfigError, match=r"^the \[net\] size of .*wide.cfg is 416x320, not square; give img_size=N"):
        resolve_img_size(None, str(wide))
    assert resolve_img_size(320, str(wide)) == 320
