"""Tests of the model zoo (`yolo_slim.darknet.zoo`).

The oracle is the upstream darknet cfg files (AlexeyAB/darknet ``cfg/``) in the
developers' shared folder: every generated network must have the same layers, in the
same order, with the same architecture values. The cfg reader below is deliberately a
tiny private one, independent of the project's parser, so a parser bug cannot hide a
zoo bug (or the other way round).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from yolo_slim.darknet.zoo import ZOO_NAMES, zoo_cfg_text
from yolo_slim.errors import CfgError

Section = tuple[str, dict[str, str]]

# Keys that define the architecture (what a model built from the cfg depends on).
_ARCH_KEYS = (
    "filters", "size", "stride", "pad", "groups", "group_id", "batch_normalize", "activation",
    "from", "layers", "mask", "anchors", "classes", "num", "scale_x_y", "new_coords",
)
_INT_LIST_KEYS = {"mask", "anchors"}
_REF_KEYS = {"from", "layers"}
_NUM_HEADS = {"yolov3": 3, "yolov3-spp": 3, "yolov3-tiny": 2, "yolov4": 3, "yolov4-tiny": 2, "yolov4-tiny-3l": 3}
_NUM_ANCHORS = {"yolov3": 9, "yolov3-spp": 9, "yolov3-tiny": 6, "yolov4": 9, "yolov4-tiny": 6, "yolov4-tiny-3l": 9}


def _read_cfg(text: str) -> list[Section]:
    """Sections in order as (type, {key: value}); ``#``/``;`` comments and blanks dropped."""
    sections: list[Section] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].split(";", 1)[0].strip()
        if not line:
            continue
        if line.startswith("["):
            assert line.endswith("]"), f"bad section header {raw!r}"
            sections.append((line[1:-1].strip(), {}))
            continue
        key, sep, value = line.partition("=")
        assert sep and sections, f"bad line {raw!r}"
        assert key.strip() not in sections[-1][1], f"duplicate key {key.strip()!r}"
        sections[-1][1][key.strip()] = value.strip()
    return sections


def _layers(text: str) -> list[Section]:
    sections = _read_cfg(text)
    assert sections[0][0] == "net"
    return sections[1:]


def _norm(key: str, value: str, index: int) -> object:
    """Comparable form of a value: int lists, absolute layer ids, numbers, else the string."""
    if key in _REF_KEYS:
        ids = [int(v) for v in value.split(",")]
        return [index + i if i < 0 else i for i in ids]
    if key in _INT_LIST_KEYS:
        return [int(v) for v in value.split(",") if v.strip()]
    try:
        return float(value)
    except ValueError:
        return value


def _arch(section: Section, index: int) -> tuple[str, dict[str, object]]:
    kind, keys = section
    return kind, {k: _norm(k, v, index) for k, v in keys.items() if k in _ARCH_KEYS}


def _all_keys(section: Section, index: int) -> tuple[str, dict[str, object]]:
    kind, keys = section
    return kind, {k: _norm(k, v, index) for k, v in keys.items()}


# --------------------------------------------------------------------------- against upstream


@pytest.mark.parametrize("name", ZOO_NAMES)
def test_layers_match_upstream(name: str, upstream_cfg: Callable[[str], Path]) -> None:
    ours = _layers(zoo_cfg_text(name))
    theirs = _layers(upstream_cfg(name).read_text())
    assert len(ours) == len(theirs)
    assert [kind for kind, _ in ours] == [kind for kind, _ in theirs]
    for i, (a, b) in enumerate(zip(ours, theirs)):
        assert _arch(a, i) == _arch(b, i), f"{name} layer {i}"


@pytest.mark.parametrize("name", ZOO_NAMES)
def test_yolo_training_keys_match_upstream(name: str, upstream_cfg: Callable[[str], Path]) -> None:
    ours = _layers(zoo_cfg_text(name))
    theirs = _layers(upstream_cfg(name).read_text())
    for i, (a, b) in enumerate(zip(ours, theirs)):
        if a[0] == "yolo":
            assert _all_keys(a, i) == _all_keys(b, i), f"{name} layer {i}"


@pytest.mark.parametrize("name", ZOO_NAMES)
def test_net_section_matches_upstream(name: str, upstream_cfg: Callable[[str], Path]) -> None:
    ours = _read_cfg(zoo_cfg_text(name))[0][1]
    theirs = _read_cfg(upstream_cfg(name).read_text())[0][1]
    assert (ours["width"], ours["height"]) == (theirs["width"], theirs["height"])
    # Upstream's yolov3 files are left in their "Testing" mode (batch=1); the zoo writes
    # the training batch darknet documents in the comments, so these two may differ.
    skip = {"batch", "subdivisions"}
    assert {k: _norm(k, v, 0) for k, v in ours.items() if k not in skip} == {
        k: _norm(k, v, 0) for k, v in theirs.items() if k not in skip
    }


# --------------------------------------------------------------------------- self-contained


@pytest.mark.parametrize("name", ZOO_NAMES)
def test_references_point_backwards(name: str) -> None:
    layers = _layers(zoo_cfg_text(name))
    for i, (kind, keys) in enumerate(layers):
        for key in _REF_KEYS & keys.keys():
            for target in _norm(key, keys[key], i):  # type: ignore[union-attr]
                assert 0 <= target < i, f"{name} layer {i} ({kind}) {key}={keys[key]}"


@pytest.mark.parametrize("name", ZOO_NAMES)
def test_net_training_keys_present(name: str) -> None:
    net = _read_cfg(zoo_cfg_text(name))[0][1]
    expected = {
        "batch", "subdivisions", "width", "height", "channels", "momentum", "decay", "angle", "saturation",
        "exposure", "hue", "learning_rate", "burn_in", "max_batches", "policy", "steps", "scales",
    }
    assert expected <= net.keys()
    assert ("mosaic" in net) == (name == "yolov4")


@pytest.mark.parametrize("name", ZOO_NAMES)
def test_classes_rewrites_every_head(name: str) -> None:
    layers = _layers(zoo_cfg_text(name, classes=2))
    heads = [i for i, (kind, _) in enumerate(layers) if kind == "yolo"]
    assert len(heads) == _NUM_HEADS[name]
    for i in heads:
        yolo = layers[i][1]
        assert yolo["classes"] == "2"
        assert len(_norm("mask", yolo["mask"], i)) == 3  # type: ignore[arg-type]
        kind, conv = layers[i - 1]
        assert kind == "convolutional"
        assert conv["filters"] == "21"  # 3 * (2 + 5)
        assert conv["activation"] == "linear" and "batch_normalize" not in conv
    # Nothing but the head convs changes.
    default = _layers(zoo_cfg_text(name))
    changed = [i for i, (a, b) in enumerate(zip(layers, default)) if a != b]
    assert changed == sorted(heads + [i - 1 for i in heads])


def test_default_is_80_classes() -> None:
    assert zoo_cfg_text("yolov4") == zoo_cfg_text("yolov4", classes=80)
    assert "filters=255" in zoo_cfg_text("yolov4")


@pytest.mark.parametrize(
    ("img_size", "expected"), [(None, ("608", "608")), (320, ("320", "320")), ((640, 384), ("640", "384"))]
)
def test_img_size(img_size: int | tuple[int, int] | None, expected: tuple[str, str]) -> None:
    net = _read_cfg(zoo_cfg_text("yolov4", img_size=img_size))[0][1]
    assert (net["width"], net["height"]) == expected


def test_default_img_sizes() -> None:
    sizes = {name: _read_cfg(zoo_cfg_text(name))[0][1]["width"] for name in ZOO_NAMES}
    assert sizes == {
        "yolov3": "416", "yolov3-spp": "608", "yolov3-tiny": "416",
        "yolov4": "608", "yolov4-tiny": "416", "yolov4-tiny-3l": "608",
    }


@pytest.mark.parametrize("name", ZOO_NAMES)
def test_anchors_replace_all_heads(name: str) -> None:
    anchors = [(5 + i, 7 + 2 * i) for i in range(_NUM_ANCHORS[name])]
    layers = _layers(zoo_cfg_text(name, anchors=anchors))
    heads = [keys for kind, keys in layers if kind == "yolo"]
    flat = [v for pair in anchors for v in pair]
    for yolo in heads:
        assert _norm("anchors", yolo["anchors"], 0) == flat
        assert yolo["num"] == str(len(anchors))


def test_unknown_name() -> None:
    with pytest.raises(CfgError, match=r"unknown zoo network 'yolov5'.*yolov3, yolov3-spp, .*yolov4-tiny-3l"):
        zoo_cfg_text("yolov5")


@pytest.mark.parametrize("classes", [0, -3, 2.5, True])
def test_bad_classes(classes: object) -> None:
    with pytest.raises(CfgError, match=r"classes must be an int >= 1"):
        zoo_cfg_text("yolov4-tiny", classes=classes)  # type: ignore[arg-type]


def test_wrong_anchor_count() -> None:
    with pytest.raises(CfgError, match=r"yolov4-tiny needs exactly 6 anchors \(num=6\).*got 9"):
        zoo_cfg_text("yolov4-tiny", anchors=[(10, 10)] * 9)


def test_bad_anchor_pair() -> None:
    with pytest.raises(CfgError, match=r"anchor \(10, 0\) of yolov3-tiny: expected a \(width, height\) pair"):
        zoo_cfg_text("yolov3-tiny", anchors=[(10, 10)] * 5 + [(10, 0)])


@pytest.mark.parametrize("img_size", [100, 0, (416, 300), (416,), "416"])
def test_bad_img_size(img_size: object) -> None:
    with pytest.raises(CfgError, match=r"img_size"):
        zoo_cfg_text("yolov3", img_size=img_size)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ZOO_NAMES)
def test_opencv_darknet_importer_reads_it(name: str, tmp_path: Path) -> None:
    """An independent darknet reader (OpenCV's importer, opencv 4.x) accepts the text."""
    cv2 = pytest.importorskip("cv2")
    if not hasattr(cv2.dnn, "readNetFromDarknet"):
        pytest.skip("this OpenCV has no darknet importer (removed in 5.0)")
    path = tmp_path / f"{name}.cfg"
    path.write_text(zoo_cfg_text(name, classes=3, img_size=320))
    net = cv2.dnn.readNetFromDarknet(str(path))
    assert not net.empty()
    assert len(net.getUnconnectedOutLayers()) == _NUM_HEADS[name]
