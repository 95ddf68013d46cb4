"""The cfg parser, validator and writer (`yolo_slim.darknet.cfg`).

Oracles: the upstream darknet files (every one parses, and to the same layers as the
zoo's independently generated text), OpenCV's darknet importer reading what the
writer wrote (in the model tests), and hand-written cfgs for every error path.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from yolo_slim.darknet.cfg import (
    load_cfg,
    parse_cfg,
    parse_cfg_text,
    remove_layers,
    with_classes,
    with_input_size,
    write_cfg,
    write_cfg_text,
)
from yolo_slim.darknet.sections import ConvSection, MaxPoolSection, RouteSection, ShortcutSection, UpsampleSection, YoloSection
from yolo_slim.darknet.zoo import ZOO_NAMES, zoo_cfg_text
from yolo_slim.errors import CfgError

# (layers, convs, heads) of each published network
_COUNTS = {
    "yolov3": (107, 75, 3),
    "yolov3-spp": (114, 76, 3),
    "yolov3-tiny": (24, 13, 2),
    "yolov4": (162, 110, 3),
    "yolov4-tiny": (38, 21, 2),
    "yolov4-tiny-3l": (45, 24, 3),
}

NET = "[net]\nwidth=64\nheight=64\nchannels=3\n"


def conv(filters: int = 8, size: int = 3, stride: int = 1, extra: str = "") -> str:
    return f"[convolutional]\nbatch_normalize=1\nfilters={filters}\nsize={size}\nstride={stride}\npad=1\nactivation=leaky\n{extra}"


def head(classes: int = 2, mask: str = "0,1,2") -> str:
    n = len(mask.split(","))
    return (
        f"[convolutional]\nfilters={n * (classes + 5)}\nsize=1\nstride=1\npad=1\nactivation=linear\n"
        f"[yolo]\nmask={mask}\nanchors=10,13, 16,30, 33,23\nclasses={classes}\nnum=3\n"
    )


def cfg_file(tmp_path: Path, text: str, name: str = "net.cfg") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# --------------------------------------------------------------------------- real files


@pytest.mark.parametrize("name", ZOO_NAMES)
def test_parses_upstream_file(name: str, upstream_cfg: Callable[[str], Path]) -> None:
    cfg = parse_cfg(upstream_cfg(name))
    layers, convs, heads = _COUNTS[name]
    assert (len(cfg), len(cfg.conv_ids()), len(cfg.yolo_ids())) == (layers, convs, heads)
    assert cfg.num_classes == 80
    for i in range(len(cfg)):
        assert all(-1 <= src < i for src in cfg.inputs(i)), f"layer {i}"


@pytest.mark.parametrize("name", ZOO_NAMES)
def test_zoo_parses_to_the_upstream_layers(name: str, upstream_cfg: Callable[[str], Path]) -> None:
    """Two independent texts (upstream's file, the zoo's generator) give equal sections,
    down to the reference style and the training keys."""
    assert parse_cfg_text(zoo_cfg_text(name)).layers == parse_cfg(upstream_cfg(name)).layers


def test_yolov3_route_references_become_absolute(upstream_cfg: Callable[[str], Path]) -> None:
    cfg = parse_cfg(upstream_cfg("yolov3"))
    # upstream writes `layers = -1, 61` (relative, absolute) and `layers = -4`
    assert cfg.layers[86] == RouteSection((85, 61), relative=(True, False), line=cfg.layers[86].line)
    assert cfg.layers[83].sources == (79,)
    assert cfg.layers[4] == ShortcutSection((1,), "linear", (True,), line=cfg.layers[4].line)


@pytest.mark.parametrize("name", ZOO_NAMES)
def test_write_parse_round_trip(name: str) -> None:
    cfg = parse_cfg_text(zoo_cfg_text(name, classes=3))
    text = write_cfg_text(cfg)
    again = parse_cfg_text(text)
    assert again == cfg
    assert again.net.options == cfg.net.options
    assert write_cfg_text(again) == text


def test_round_trip_of_every_layer_fixture(fixture_path: Callable[[str], Path]) -> None:
    cfg = parse_cfg(fixture_path("every_layer.cfg"))
    assert parse_cfg_text(write_cfg_text(cfg)) == cfg
    kinds = {type(s) for s in cfg.layers}
    assert kinds == {ConvSection, ShortcutSection, RouteSection, MaxPoolSection, UpsampleSection, YoloSection}


def test_references_written_in_their_read_style() -> None:
    text = NET + conv() + conv() + "[route]\nlayers=-1, 0\n" + conv() + "[shortcut]\nfrom=1\n"
    cfg = parse_cfg_text(text)
    assert cfg.layers[2].sources == (1, 0)
    assert cfg.layers[4].sources == (1,) and cfg.inputs(4) == (3, 1)
    written = write_cfg_text(cfg)
    assert "layers=-1,0" in written and "from=1" in written


def test_syntax_tolerance() -> None:
    text = (
        "# leading comment\n[net]\n width = 32 \nheight=32\n; semicolon comment\n"
        "[Convolutional]  # trailing comment\nbatch_normalize=1\nfilters = 4\nsize=3\nstride=1\npad=1\nactivation=mish\n\n"
        "[max]\nsize=2\nstride=2\n[conv]\nfilters=7\nsize=1\nactivation=linear\n"
    )
    cfg = parse_cfg_text(text)
    assert cfg.input_hw == (32, 32)
    assert cfg.layers[0] == ConvSection(4, 3, 1, 1, 0, 1, 1, "mish")
    assert cfg.layers[1] == MaxPoolSection(2, 2, 1)
    assert cfg.layers[2] == ConvSection(7, 1, activation="linear")  # darknet defaults: no pad, no BN


def test_darknet_defaults() -> None:
    cfg = parse_cfg_text("[net]\n[convolutional]\nfilters=4\n[maxpool]\n[yolo]\nanchors=1,2,3,4\nclasses=1\nmask=0\n", validate=False)
    assert cfg.input_hw == (416, 416) and cfg.net.channels == 3
    assert cfg.layers[0] == ConvSection(4, size=1, stride=1, pad=0, activation="logistic")
    assert cfg.layers[1] == MaxPoolSection(size=1, stride=1, padding=0)
    assert cfg.layers[2].num == 2 and cfg.layers[2].scale_x_y == 1.0


def test_training_keys_kept_verbatim() -> None:
    text = NET + conv(extra="stopbackward=1\n") + head().replace("num=3\n", "num=3\njitter=.3\nignore_thresh = .7\n")
    cfg = parse_cfg_text(text)
    assert cfg.layers[0].extra == (("stopbackward", "1"),)
    assert cfg.layers[2].extra == (("jitter", ".3"), ("ignore_thresh", ".7"))
    assert "ignore_thresh=.7" in write_cfg_text(cfg)


def test_line_numbers_do_not_affect_equality() -> None:
    a = parse_cfg_text(NET + conv() + head())
    b = parse_cfg_text("\n\n# moved down\n" + NET + conv() + head())
    assert a == b and a.layers[0].line != b.layers[0].line


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (conv(extra="flters=3\n"), r"net.cfg:12: \[convolutional\] flters: unknown key for \[convolutional\] \(supported: batch_normalize, filters,"),
        (conv().replace("filters=8", "filters=eight"), r"net.cfg:7: \[convolutional\] filters: expected an integer, got 'eight'"),
        (conv().replace("filters=8", "filters=0"), r"net.cfg:7: \[convolutional\] filters: expected an integer >= 1, got 0"),
        (conv().replace("filters=8\n", ""), r"net.cfg:5: \[convolutional\] filters: missing required key"),
        (conv().replace("leaky", "tanh"), r"activation: unsupported activation 'tanh'; expected one of leaky, relu, mish"),
        (conv().replace("batch_normalize=1", "batch_normalize=2"), r"batch_normalize: expected 0 or 1, got 2"),
        (conv(extra="filters=4\n"), r"net.cfg:12: \[convolutional\] filters: duplicate key \(first given on line 7\)"),
        (conv() + "[dropout]\nprobability=.5\n", r"net.cfg:12: unknown or unsupported section \[dropout\] \(layer 1\); supported: convolutional,"),
        (conv() + "[route]\nlayers=1\n", r"net.cfg:13: \[route\] layers: reference 1 of layer 1 points forward or self \(layer 1\); expected an earlier layer 0..0"),
        (conv() + "[shortcut]\nfrom=-3\n", r"\[shortcut\] from: reference -3 of layer 1 points before the first layer \(layer -2\)"),
        (conv() + "[route]\nlayers=\n", r"\[route\] layers: expected at least one layer reference"),
        (conv() + "[route]\nlayers=-1\ngroups=2\ngroup_id=2\n", r"group_id: expected 0..1 for groups=2, got 2"),
        (conv() + "[route]\nlayers=-1,x\n", r"layers: expected comma-separated integers, got '-1,x'"),
        (conv(21) + "[yolo]\nmask=0,1,5\nanchors=1,2,3,4,5,6\nclasses=2\n", r"mask: indices \[5\] out of range 0..2"),
        (conv(21) + "[yolo]\nmask=0\nanchors=1,2,3\nclasses=2\n", r"anchors: expected \(w, h\) pairs, got 3 numbers"),
        (conv(21) + "[yolo]\nmask=0\nanchors=1,2,3,4\nnum=3\nclasses=2\n", r"num: num=3 but anchors holds 2 \(w, h\) pairs"),
        (conv(21) + "[yolo]\nmask=0\nclasses=2\n", r"\[yolo\] anchors: missing required key"),
        (conv() + "[convolutional\nfilters=3\n", r"net.cfg:12: section header '\[convolutional' has no closing '\]'"),
        (conv() + "filters\n", r"net.cfg:12: expected 'key=value', got 'filters'"),
    ],
)
def test_bad_cfg_names_file_line_key(tmp_path: Path, body: str, message: str) -> None:
    path = cfg_file(tmp_path, NET + body)
    with pytest.raises(CfgError, match=message):
        parse_cfg(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", r"no sections found; expected a darknet cfg starting with \[net\]"),
        ("# only a comment\n", r"no sections found"),
        ("[convolutional]\nfilters=3\n", r"net.cfg:1: the first section is \[convolutional\]; expected \[net\]"),
        (NET, r"net.cfg: the cfg defines no layers after \[net\]"),
        ("width=3\n" + NET + conv(), r"net.cfg:1: option 'width=3' before the first \[section\]"),
        ("[net]\nwidth=-5\n" + conv(), r"net.cfg:2: \[net\] width: expected an integer >= 1, got -5"),
    ],
)
def test_bad_file_structure(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(CfgError, match=message):
        parse_cfg(cfg_file(tmp_path, text))


def test_all_problems_in_one_message(tmp_path: Path) -> None:
    body = conv().replace("filters=8", "filters=x") + conv(extra="colour=red\n") + "[route]\nlayers=5\n"
    with pytest.raises(CfgError) as info:
        parse_cfg(cfg_file(tmp_path, NET + body))
    message = str(info.value)
    assert message.startswith(f"{tmp_path / 'net.cfg'}: 3 problems in darknet cfg:")
    assert ":7: [convolutional] filters: expected an integer" in message
    assert ":19: [convolutional] colour: unknown key" in message
    assert ":21: [route] layers: reference 5 of layer 2 points forward" in message


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (conv() + head(classes=3).replace("filters=24", "filters=21"),
         r"net.cfg:18: \[yolo\] \(layer 2\) the layer before this head has 21 filters; expected len\(mask\) \* \(classes \+ 5\) = 3 \* \(3 \+ 5\) = 24"),
        (conv(8) + conv(16) + "[shortcut]\nfrom=-2\n",
         r"net.cfg:19: \[shortcut\] \(layer 2\) from=-2 \(layer 0, shape \(8, 64, 64\)\) does not match the previous layer 1 \(shape \(16, 64, 64\)\)"),
        (conv(8) + conv(8, stride=2) + "[route]\nlayers=-1,-2\n",
         r"\[route\] \(layer 2\) layers: input layer 0 is 64x64 but layer 1 is 32x32; route inputs must have the same spatial size"),
        (conv(6) + "[route]\nlayers=-1\ngroups=4\ngroup_id=0\n", r"groups=4 does not divide the 6 channels of layer 0"),
        (conv(6) + conv(8, extra="groups=4\n"), r"groups=4 must divide input channels 6 and filters 8"),
        ("[maxpool]\nsize=2\nstride=2\npadding=0\n" * 7, r"\(layer 6\) output would be 0x0 at input 64x64; the input is too small"),
    ],
)
def test_shape_problems_name_the_line(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(CfgError, match=message):
        parse_cfg(cfg_file(tmp_path, NET + body))


def test_validate_false_skips_shape_checks() -> None:
    text = NET + conv() + head(classes=3).replace("filters=24", "filters=21")
    assert len(parse_cfg_text(text, validate=False)) == 3


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CfgError, match=rf"{tmp_path / 'nope.cfg'}: cannot read cfg file: No such file"):
        parse_cfg(tmp_path / "nope.cfg")


# --------------------------------------------------------------------------- load and edits


def test_load_cfg_from_zoo_path_and_parsed(tmp_path: Path) -> None:
    zoo = load_cfg("yolov4-tiny", classes=2, img_size=320)
    assert zoo.source == "<zoo:yolov4-tiny>" and zoo.num_classes == 2 and zoo.input_hw == (320, 320)
    path = write_cfg(zoo, tmp_path / "tiny.cfg")
    from_file = load_cfg(path)
    assert from_file == zoo and from_file.source == str(path)
    assert load_cfg(from_file, classes=4).num_classes == 4


def test_load_cfg_unknown() -> None:
    with pytest.raises(CfgError, match=r"yolov9: no such cfg file, and not a model-zoo name \(zoo: yolov3, yolov3-spp"):
        load_cfg("yolov9")


def test_with_classes_rewrites_heads_like_the_zoo() -> None:
    for name in ("yolov4", "yolov3-tiny"):
        rewritten = with_classes(parse_cfg_text(zoo_cfg_text(name)), 2)
        assert rewritten == parse_cfg_text(zoo_cfg_text(name, classes=2))


def test_with_classes_errors() -> None:
    cfg = parse_cfg_text(zoo_cfg_text("yolov3-tiny"))
    with pytest.raises(CfgError, match=r"classes must be >= 1, got 0"):
        with_classes(cfg, 0)
    odd = parse_cfg_text(NET + conv(24) + "[maxpool]\nsize=1\nstride=1\n" + "[yolo]\nmask=0,1,2\nanchors=1,2,3,4,5,6\nclasses=3\n")
    with pytest.raises(CfgError, match=r"\[yolo\] layer 2 is not fed by a \[convolutional\] layer"):
        with_classes(odd, 2)


def test_with_input_size() -> None:
    cfg = with_input_size(parse_cfg_text(zoo_cfg_text("yolov4")), 384, 640)
    assert cfg.input_hw == (384, 640)
    assert "width=640" in write_cfg_text(cfg) and "height=384" in write_cfg_text(cfg)


def test_remove_residual_unit_renumbers_references() -> None:
    """Dropping yolov3's last stride-8 residual unit (layers 59-61) shifts every later
    reference by three, and the route that tapped it falls back to the unit before."""
    cfg = parse_cfg_text(zoo_cfg_text("yolov3"))
    assert isinstance(cfg.layers[61], ShortcutSection) and cfg.layers[86].sources == (85, 61)
    slim, new_id = remove_layers(cfg, {59, 60, 61})
    assert len(slim) == len(cfg) - 3
    assert new_id[62] == 59 and new_id[58] == 58 and 61 not in new_id
    assert slim.layers[83].sources == (82, 58)  # was (85, 61); 61 removed -> 58
    assert slim.layers[95].sources == (94, 36)  # was (97, 36): 36 is before the cut
    assert slim.layers[62].sources == (59,)  # the next unit's shortcut (old 65, from=-3)
    reparsed = parse_cfg_text(write_cfg_text(slim))
    assert reparsed == slim
    assert "layers=-1,58" in write_cfg_text(slim)


def test_write_cfg_is_atomic_and_replaces(tmp_path: Path) -> None:
    path = tmp_path / "out" / "model.cfg"
    cfg = parse_cfg_text(zoo_cfg_text("yolov3-tiny"))
    write_cfg(cfg, path)
    write_cfg(with_classes(cfg, 1), path)
    assert parse_cfg(path).num_classes == 1
    assert [p.name for p in path.parent.iterdir()] == ["model.cfg"]
