"""The table of hostile inputs: one row each, run by test_hostile_inputs.py.

A row says how the input reaches yolo_slim (`via`), builds the bad input in a fresh
folder (`make`) and gives the pattern of the one line the user must get (`expect`,
searched in the message). Every row must end in exactly that one line: no traceback,
no silent success, no partial file in the output folder.

`via` is one of:

- ``"yolo_slim"``: `make` returns the argv of ``python -m yolo_slim`` (run in-process
  through `yolo_slim.__main__.main`; exit status 2, one ``error:`` line on stderr);
- ``"load"``: `make` returns a zero-argument callable (a loader call) that must raise
  a `YoloSlimError` with a one-line message;
- ``"export"``, ``"prune"``, ``"train"``: `make` returns Hydra overrides for that app's
  config; the task function runs in-process (`Workspace.task_overrides` adds the
  output folders and tiny-run settings) and must raise a one-line `YoloSlimError`
  and leave its output folder empty;
- ``"script"``: `make` returns ``[script, *args]`` run as a subprocess from the
  checkout (exit status 2, one ``error:`` line, no traceback, output folder empty).

To add rows: append `Row(...)` to `ROWS` (or a list of your own, concatenated below),
with a unique `id`. `Workspace` has helpers that write typical bad files.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from yolo_slim.darknet.cfg import load_cfg, parse_cfg, parse_cfg_text
from yolo_slim.darknet.weights import WeightsHeader, conv_layout, read_darknet_weights
from yolo_slim.model import Darknet, load_model

def tiny_cfg(classes: tuple[int, int] = (2, 2), head_filters: tuple[int, int] = (21, 21), filters: int = 16, size: int = 3) -> str:
    """A small two-head network at 64 px (strides 4 and 8): quick to build, run and export.

    Args:
        classes: each head's class count.
        head_filters: each head's conv filters (3 * (classes + 5) fits).
        filters, size: the two 16-filter 3x3 convs.
    """
    def conv(f: int, k: int, stride: int, bn: bool = True, act: str = "leaky") -> str:
        return f"[convolutional]\n{'batch_normalize=1' + chr(10) if bn else ''}filters={f}\nsize={k}\nstride={stride}\npad=1\nactivation={act}\n\n"

    def head(f: int, c: int, mask: str) -> str:
        return conv(f, 1, 1, bn=False, act="linear") + f"[yolo]\nmask={mask}\nanchors=4,4, 8,8, 12,12, 16,16, 24,24, 32,32\nclasses={c}\nnum=6\n\n"

    return (
        "[net]\nwidth=64\nheight=64\nchannels=3\n\n" + conv(8, 3, 2) + conv(filters, size, 2) + head(head_filters[0], classes[0], "0,1,2")
        + "[route]\nlayers=-3\n\n" + conv(filters, size, 2) + head(head_filters[1], classes[1], "3,4,5")
    )


TINY_CFG = tiny_cfg()


class Workspace:
    """A fresh folder for one row, with writers of typical bad inputs."""

    def __init__(self, root: Path, ir_dir: Path | None = None) -> None:
        self.root = root
        self.out = root / "out"
        self._ir_dir = ir_dir

    def file(self, name: str, content: str | bytes) -> Path:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
        return path

    def cfg(self, old: str = "", new: str = "", name: str = "net.cfg", count: int = 1) -> Path:
        """TINY_CFG with `old` replaced by `new` (`count` times)."""
        if old and old not in TINY_CFG:
            raise ValueError(f"{old!r} not in TINY_CFG")
        return self.file(name, TINY_CFG.replace(old, new, count) if old else TINY_CFG)

    def weights(self, values: float | None = None, extra_floats: int = 0, name: str = "net.weights") -> Path:
        """A .weights file for TINY_CFG: random, or every float `values`, plus `extra_floats`."""
        cfg = parse_cfg_text(TINY_CFG)
        count = sum(r.count for r in conv_layout(cfg)) + extra_floats
        body = np.full(count, values, "<f4") if values is not None else np.random.default_rng(0).uniform(0.1, 1.0, count).astype("<f4")
        return self.file(name, WeightsHeader().to_bytes() + body.tobytes())

    def weights_with(self, layer_part: tuple[int, str], value: float, name: str = "net.weights") -> Path:
        """Valid random weights with one part of one conv layer set to `value`."""
        path = self.weights(name=name)
        cfg = parse_cfg_text(TINY_CFG)
        header, arrays = read_darknet_weights(path, cfg)
        arrays[layer_part[0]][layer_part[1]][:] = value
        from yolo_slim.darknet.weights import write_darknet_weights

        return write_darknet_weights(path, cfg, arrays, header)

    def checkpoint(self, payload: Any, name: str = "net.ckpt") -> Path:
        path = self.root / name
        torch.save(payload, path)
        return path

    def model_checkpoint(self, edit: Callable[[dict], None] | None = None, cfg_text: str = TINY_CFG, name: str = "net.ckpt") -> Path:
        """A yolo_slim checkpoint of TINY_CFG (optionally edited state dict)."""
        from yolo_slim.io.checkpoint import model_checkpoint

        state = Darknet(parse_cfg_text(cfg_text)).state_dict()
        if edit is not None:
            edit(state)
        return self.checkpoint(model_checkpoint(state, cfg_text), name)

    def evil_checkpoint(self, name: str = "evil.ckpt") -> Path:
        return self.checkpoint({"state_dict": {}, "hyper_parameters": _Payload(self.root / "pwned")}, name)

    def image_folder(self) -> Path:
        """A folder with one small image (a valid detect source)."""
        import cv2

        folder = self.root / "images"
        folder.mkdir(exist_ok=True)
        cv2.imwrite(str(folder / "0.png"), np.full((48, 64, 3), 127, np.uint8))
        return folder

    def ir(self) -> Path:
        """A copy of a valid exported IR folder (model.xml, model.bin, meta.json)."""
        target = self.root / "ir"
        shutil.copytree(self._ir_dir, target)
        return target / "model.xml"

    def ir_with_nan(self) -> Path:
        """The IR with the first float32 constant (a conv weight) overwritten with NaN."""
        xml = self.ir()
        text = xml.read_text()
        m = re.search(r'<data element_type="f32" shape="[^"]+" offset="(\d+)" size="(\d+)"', text)
        offset, size = int(m.group(1)), int(m.group(2))
        blob = bytearray(xml.with_suffix(".bin").read_bytes())
        blob[offset : offset + size] = np.full(size // 4, np.nan, "<f4").tobytes()
        xml.with_suffix(".bin").write_bytes(bytes(blob))
        return xml


class _Payload:
    """Builds os.system(...) when unpickled: what a hostile checkpoint carries."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@dataclass(frozen=True)
class Row:
    """One hostile input (see the module docstring)."""

    id: str
    via: str
    make: Callable[[Workspace], Any]
    expect: str


def _yolo_slim(*argv: Any) -> Callable[[Workspace], list[str]]:
    return lambda w: [str(a(w)) if callable(a) else str(a) for a in argv]


NAN = float("nan")

ROWS: list[Row] = [
    # ------------------------------------------------------------------ cfg files
    Row("cfg heads disagree on classes", "yolo_slim", lambda w: ["info", w.file("net.cfg", tiny_cfg(classes=(2, 3), head_filters=(21, 24)))],
        r"net.cfg:\d+: \[yolo\] \(layer 7\) classes=3, but the first head \(layer 3, line \d+\) has classes=2; every head must predict the same classes"),
    Row("cfg head conv filters wrong", "yolo_slim", lambda w: ["info", w.cfg("filters=21", "filters=20")],
        r"the layer before this head has 20 filters; expected len\(mask\) \* \(classes \+ 5\) = 3 \* \(2 \+ 5\) = 21"),
    Row("cfg filters=2000000000", "yolo_slim", lambda w: ["info", w.cfg("filters=8", "filters=2000000000")],
        r"net.cfg:8: \[convolutional\] filters: expected an integer <= 16,384 \(a plausible upper bound\), got 2,000,000,000"),
    Row("cfg kernel size=999", "load", lambda w: lambda: parse_cfg(w.cfg("size=3", "size=999")),
        r"net.cfg:9: \[convolutional\] size: expected an integer <= 64 \(a plausible upper bound\)"),
    Row("cfg stride=1000", "load", lambda w: lambda: parse_cfg(w.cfg("stride=2", "stride=1000")),
        r"\[convolutional\] stride: expected an integer <= 32 \(a plausible upper bound\), got 1,000"),
    Row("cfg 1.3 TB of parameters", "load", lambda w: lambda: parse_cfg(w.file("net.cfg", tiny_cfg(filters=16384, size=64))),
        r"net.cfg: the network has [\d,]+ parameters, more than the plausible 2,147,483,648"),
    Row("cfg width not a multiple of the stride", "yolo_slim", lambda w: ["info", w.cfg("width=64", "width=63")],
        r"net.cfg:1: \[net\] width=63 height=64: input size 64x63 is not a multiple of 8, the network's largest stride"),
    Row("info --img-size 63", "yolo_slim", lambda w: ["info", "yolov4-tiny", "--img-size", "63"],
        r"img_size=63: input size 63x63 is not a multiple of 32, the network's largest stride \(<zoo:yolov4-tiny>\); use e.g. 64x64"),
    Row("cfg width=100000", "load", lambda w: lambda: parse_cfg(w.cfg("width=64", "width=100000")),
        r"\[net\] width: expected an integer <= 8,192 \(a plausible upper bound\), got 100,000"),
    Row("weights file given as the cfg", "yolo_slim", lambda w: ["info", w.weights()],
        r"net.weights: byte offset \d+: expected a darknet cfg \(UTF-8 text\), got binary data \(a .weights file\?\)"),
    Row("cfg in latin-1", "load", lambda w: lambda: parse_cfg(w.file("net.cfg", ("# r\u00e9seau\n" + TINY_CFG).encode("latin-1"))),
        r"net.cfg: byte offset 3: expected a darknet cfg \(UTF-8 text\), got not UTF-8 text"),
    Row("cfg unknown section", "yolo_slim", lambda w: ["info", w.cfg("[route]", "[dropout]\nprobability=0.5\n\n[route]")],
        r"net.cfg:\d+: unknown or unsupported section \[dropout\] \(layer 4\)"),
    Row("cfg forward route", "yolo_slim", lambda w: ["info", w.cfg("layers=-3", "layers=6")],
        r"\[route\] layers: reference 6 of layer 4 points forward or self \(layer 6\); expected an earlier layer 0..3"),
    Row("cfg anchor nan", "yolo_slim", lambda w: ["info", w.cfg("anchors=4,4,", "anchors=nan,4,")],
        r"\[yolo\] anchors: expected comma-separated finite numbers, got 'nan,4,8,8,12,12,16,16,24,24,32,32'"),
    Row("cfg negative anchor", "load", lambda w: lambda: parse_cfg(w.cfg("anchors=4,4,", "anchors=-4,4,")),
        r"\[yolo\] anchors: expected widths and heights in \(0, 65536\] pixels, got -4"),
    Row("cfg mask index repeated", "yolo_slim", lambda w: ["info", w.cfg("mask=0,1,2", "mask=0,1,1")],
        r"\[yolo\] mask: anchor indices \[1\] repeat; each head uses an anchor once"),
    Row("cfg mask out of range", "load", lambda w: lambda: parse_cfg(w.cfg("mask=3,4,5", "mask=3,4,9")),
        r"\[yolo\] mask: indices \[9\] out of range 0..5 \(anchors holds 6 pairs\)"),
    Row("cfg num disagrees with anchors", "load", lambda w: lambda: parse_cfg(w.cfg("num=6", "num=7")),
        r"\[yolo\] num: num=7 but anchors holds 6 \(w, h\) pairs"),
    Row("cfg scale_x_y=0", "load", lambda w: lambda: parse_cfg(w.cfg("num=6\n", "num=6\nscale_x_y=0\n")),
        r"\[yolo\] scale_x_y: expected a number in \(0, 16\], got 0"),
    Row("cfg integer with underscore", "load", lambda w: lambda: parse_cfg(w.cfg("filters=8", "filters=1_6")),
        r"net.cfg:8: \[convolutional\] filters: expected an integer, got '1_6'"),
    Row("cfg empty file", "yolo_slim", lambda w: ["info", w.file("empty.cfg", "")],
        r"empty.cfg: no sections found; expected a darknet cfg starting with \[net\]"),
    Row("cfg first section not [net]", "load", lambda w: lambda: parse_cfg(w.file("net.cfg", TINY_CFG.replace("[net]", "[convolutional]"))),
        r"net.cfg:1: the first section is \[convolutional\]; expected \[net\]"),
    Row("cfg missing", "yolo_slim", lambda w: ["info", w.root / "nope.cfg"],
        r"nope.cfg: no such cfg file, and not a model-zoo name"),
    Row("cfg too small an input", "load", lambda w: lambda: load_cfg(w.cfg(), img_size=4),
        r"img_size=4: input size 4x4 is outside 8..8192 pixels"),
    # ------------------------------------------------------------------ .weights
    Row("all-NaN .weights (sparsity)", "yolo_slim", lambda w: ["sparsity", w.cfg(), w.weights(NAN)],
        r"net.weights: byte offset 20: nan where a finite float32 is expected in conv layer 0 beta \(value 0 of 8\)"),
    Row("one inf in .weights (info)", "yolo_slim", lambda w: ["info", w.cfg(), "--weights", w.weights_with((5, "gamma"), np.inf)],
        r"net.weights: byte offset [\d,]+: inf where a finite float32 is expected in conv layer 5 gamma \(value 0 of 16\)"),
    Row("negative BatchNorm variance", "load", lambda w: lambda: load_model(w.cfg(), w.weights_with((1, "running_var"), -1.0)),
        r"net.weights: byte offset [\d,]+: running variance -1 in conv layer 1 \(value 0 of 16\); a variance is never negative"),
    Row(".weights too short", "yolo_slim", lambda w: ["info", w.cfg(), "--weights", w.file("net.weights", w.weights().read_bytes()[:-40])],
        r"net.weights: file too short: .*net.cfg needs [\d,]+ float32 values after the 20-byte header, the file holds [\d,]+"),
    Row(".weights with floats left over", "load", lambda w: lambda: load_model(w.cfg(), w.weights(extra_floats=3)),
        r"net.weights: file has floats left over: .* were these weights made for another cfg or class count\?"),
    Row(".weights of 3 bytes", "load", lambda w: lambda: load_model(w.cfg(), w.file("net.weights", b"abc")),
        r"net.weights: 3 bytes is too short for a darknet .weights header \(at least 16 bytes\)"),
    Row(".weights header garbage", "load", lambda w: lambda: load_model(w.cfg(), w.file("net.weights", b"\xff" * 64)),
        r"net.weights: header version -1.-1.-1 is not a darknet .weights file"),
    Row(".weights body not whole floats", "load", lambda w: lambda: load_model(w.cfg(), w.file("net.weights", WeightsHeader().to_bytes() + b"\x00" * 7)),
        r"net.weights: body of 7 bytes is not a whole number of float32 values"),
    Row(".weights is a folder", "load", lambda w: lambda: load_model(w.cfg(), (w.root / "dir.weights").mkdir() or w.root / "dir.weights"),
        r"dir.weights: cannot read weights file: Is a directory"),
    Row(".weights missing", "yolo_slim", lambda w: ["sparsity", w.cfg(), w.root / "nope.weights"],
        r"nope.weights: cannot read weights file: No such file or directory"),
    # ------------------------------------------------------------------ checkpoints
    Row("hostile .ckpt (sparsity)", "yolo_slim", lambda w: ["sparsity", w.cfg(), w.evil_checkpoint()],
        r"evil.ckpt: not a yolo_slim checkpoint: it asks to build the Python object posix.system, and yolo_slim will not unpickle it"),
    Row("garbage .ckpt", "load", lambda w: lambda: load_model(w.cfg(), w.file("net.ckpt", b"\x80\x02garbage" * 9)),
        r"net.ckpt: not a yolo_slim checkpoint \(not a torch.save file of tensors, or corrupted\); it will not be unpickled"),
    Row("empty .ckpt", "load", lambda w: lambda: load_model(w.cfg(), w.file("net.ckpt", b"")),
        r"net.ckpt: not a readable checkpoint \(EOFError"),
    Row("NaN tensor in .ckpt", "yolo_slim",
        lambda w: ["sparsity", w.cfg(), w.model_checkpoint(lambda s: s["layers.1.bn.weight"].fill_(NAN))],
        r"net.ckpt: tensor model.layers.1.bn.weight holds NaN/inf: 16 of 16 values are non-finite \(nan\), the first at flat index 0"),
    Row(".ckpt without state_dict", "load", lambda w: lambda: load_model(w.cfg(), w.checkpoint({"model": torch.zeros(3)})),
        r"net.ckpt: not a yolo_slim checkpoint \(a Lightning checkpoint with a 'state_dict' of tensors\)"),
    Row(".ckpt of another architecture", "yolo_slim", lambda w: ["sparsity", "yolov4-tiny", w.model_checkpoint(), "--classes", "2"],
        r"net.ckpt: the weights do not match the model's architecture \(cfg\): \d+ tensors differ in shape"),
    # ------------------------------------------------------------------ export task
    Row("export img_size=63", "export", lambda w: ["model.cfg=yolov4-tiny", "img_size=63"],
        r"img_size=63: input size 63x63 is not a multiple of 32, the network's largest stride"),
    Row("export img_size=100000", "export", lambda w: [f"model.cfg={w.cfg()}", "img_size=100000"],
        r"img_size=100000: input size 100000x100000 is outside 8..8192 pixels"),
    Row("export all-NaN weights", "export", lambda w: [f"model.cfg={w.cfg()}", f"weights={w.weights(NAN)}", "img_size=64"],
        r"net.weights: byte offset 20: nan where a finite float32 is expected"),
    Row("export weights that overflow", "export", lambda w: [f"model.cfg={w.cfg()}", f"weights={w.weights(3e38)}", "img_size=64"],
        r"export: the model's own PyTorch output holds NaN/inf \([\d,]+ of [\d,]+ values are non-finite"),
    Row("export weights of another cfg", "export", lambda w: ["model.cfg=yolov4-tiny", f"weights={w.weights()}", "img_size=64"],
        r"net.weights: file too short: <zoo:yolov4-tiny> needs [\d,]+ float32 values"),
    Row("export cfg with bad heads", "export", lambda w: [f"model.cfg={w.cfg('filters=21', 'filters=22')}", "img_size=64"],
        r"the layer before this head has 22 filters; expected len\(mask\) \* \(classes \+ 5\) = 3 \* \(2 \+ 5\) = 21"),
    Row("export names for another class count", "export", lambda w: [f"model.cfg={w.cfg()}", "names=[one]", "img_size=64"],
        r"export: 1 class names from the data but the model has 2 classes"),
    # ------------------------------------------------------------------ prune task
    Row("prune all-NaN weights", "prune", lambda w: [f"model.cfg={w.cfg()}", f"weights={w.weights(NAN)}"],
        r"net.weights: byte offset 20: nan where a finite float32 is expected"),
    Row("prune hostile checkpoint", "prune", lambda w: [f"model.cfg={w.cfg()}", f"weights={w.evil_checkpoint()}"],
        r"evil.ckpt: not a yolo_slim checkpoint: it asks to build the Python object posix.system"),
    Row("prune img_size=63", "prune", lambda w: [f"model.cfg={w.cfg()}", "img_size=63"],
        r"img_size=63: input size 63x63 is not a multiple of 8"),
    Row("prune absurd filters", "prune", lambda w: [f"model.cfg={w.cfg('filters=16', 'filters=99999')}"],
        r"net.cfg:\d+: \[convolutional\] filters: expected an integer <= 16,384"),
    # ------------------------------------------------------------------ train task
    Row("train resume from a hostile checkpoint", "train", lambda w: [f"ckpt_path={w.evil_checkpoint()}"],
        r"evil.ckpt: not a yolo_slim checkpoint: it asks to build the Python object posix.system"),
    Row("train from all-NaN weights", "train", lambda w: [f"model.cfg={w.cfg()}", f"weights={w.weights(NAN)}"],
        r"net.weights: byte offset 20: nan where a finite float32 is expected"),
    Row("train cfg with heads that disagree", "train", lambda w: [f"model.cfg={w.file('net.cfg', tiny_cfg(classes=(3, 2), head_filters=(24, 21)))}"],
        r"classes=2, but the first head \(layer 3, line \d+\) has classes=3; every head must predict the same classes"),
    # ------------------------------------------------------------------ IR (deploy)
    Row("IR with NaN weights", "load", lambda w: lambda: _detector(w.ir_with_nan()),
        r"ir/model.xml: tensor [\w./:]+ holds NaN/inf: [\d,]+ of [\d,]+ values are non-finite \(nan\)"),
    Row("IR without meta.json", "load", lambda w: lambda: _detector(_without_meta(w.ir())),
        r"meta.json: meta.json not found; it is written by export.py next to model.xml"),
    Row("IR xml corrupt", "load", lambda w: lambda: _detector(_truncated(w.ir())),
        r"ir/model.xml: cannot read the OpenVINO IR \(corrupt or not an IR\)"),
    Row("detect on a corrupt IR", "load", lambda w: lambda: _detect_task(w, _truncated(w.ir())),
        r"ir/model.xml: cannot read the OpenVINO IR \(corrupt or not an IR\)"),
    # ------------------------------------------------------------------ entry scripts (subprocess)
    Row("export.py img_size=63", "script", lambda w: ["export.py", "model.cfg=yolov4-tiny", "img_size=63", f"paths.output_dir={w.out}"],
        r"^error: img_size=63: input size 63x63 is not a multiple of 32"),
    Row("train.py ckpt_path=hostile", "script", lambda w: ["train.py", f"ckpt_path={w.evil_checkpoint()}"],
        r"^error: .*evil.ckpt: not a yolo_slim checkpoint: it asks to build the Python object posix.system"),
    Row("prune.py all-NaN weights", "script", lambda w: ["prune.py", f"model.cfg={w.cfg()}", f"weights={w.weights(NAN)}", "data=none"],
        r"^error: .*net.weights: byte offset 20: nan where a finite float32 is expected"),
    Row("detect.py IR with NaN weights", "script", lambda w: ["detect.py", f"weights={w.ir_with_nan()}", f"source={w.image_folder()}", f"paths.output_dir={w.out}"],
        r"^error: .*model.xml: tensor [\w./:]+ holds NaN/inf: [\d,]+ of [\d,]+ values are non-finite \(nan\)"),
    Row("python -m yolo_slim info filters=2000000000", "script",
        lambda w: ["-m", "yolo_slim", "info", str(w.cfg("filters=8", "filters=2000000000"))],
        r"^error: .*net.cfg:8: \[convolutional\] filters: expected an integer <= 16,384"),
]


def _detector(xml: Path):
    from yolo_slim.deploy.detector import OpenVINODetector

    return OpenVINODetector(xml)


def _detect_task(w: Workspace, xml: Path):
    """The detect task in-process on one image, writing into `w.out`."""
    from app_configs import compose_config

    from yolo_slim.deploy.task import detect

    conf = compose_config("detect", f"weights={xml}", f"source={w.image_folder()}", "progress=false", f"paths.output_dir={w.out}")
    return detect(conf)


def _without_meta(xml: Path) -> Path:
    (xml.parent / "meta.json").unlink()
    return xml


def _truncated(xml: Path) -> Path:
    xml.write_text(xml.read_text()[:200])
    return xml
