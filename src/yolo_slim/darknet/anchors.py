"""Anchors of a darknet cfg: reading the ones its heads use, writing new ones in.

Darknet keeps one ``anchors=`` list, the same in every ``[yolo]`` section, sorted
by area, and each head's ``mask=`` picks its anchors from it by index; the cfgs give
the finest head (smallest stride) the smallest indices, so small anchors land on
fine grids. :func:`with_anchors` writes a new list into every head, sorted by
area, masks unchanged: the heads get their anchors small -> large by stride, as
darknet's own ``calc_anchors`` output pasted into a cfg does. A cfg whose masks do
not rise with the stride is refused rather than given large anchors on a fine grid.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from yolo_slim.darknet.cfg import DarknetCfg
from yolo_slim.darknet.sections import YoloSection
from yolo_slim.darknet.shapes import infer_shapes
from yolo_slim.errors import CfgError

__all__ = ["anchor_count", "head_anchor_sets", "used_anchors", "with_anchors"]

Anchor = tuple[float, float]


def _heads(cfg: DarknetCfg) -> list[tuple[int, YoloSection]]:
    heads = [(i, cfg.layers[i]) for i in cfg.yolo_ids()]
    if not heads:
        raise CfgError(f"{cfg.source}: the cfg has no [yolo] heads, so no anchors")
    return heads  # type: ignore[return-value]


def anchor_count(cfg: DarknetCfg) -> int:
    """The length of the heads' ``anchors=`` list (darknet's ``num``).

    Raises:
        CfgError: No heads, or heads with lists of different lengths.
    """
    counts = {len(s.anchors) for _, s in _heads(cfg)}
    if len(counts) > 1:
        raise CfgError(f"{cfg.source}: the [yolo] heads have anchor lists of different lengths {sorted(counts)}")
    return counts.pop()


def head_anchor_sets(cfg: DarknetCfg) -> list[tuple[int, tuple[Anchor, ...]]]:
    """``(layer id, anchors it predicts)`` of every head, in cfg order (pixels)."""
    return [(i, s.head_anchors) for i, s in _heads(cfg)]


def used_anchors(cfg: DarknetCfg) -> tuple[Anchor, ...]:
    """The distinct anchors some head's mask uses, in index order (pixels)."""
    anchors: dict[int, Anchor] = {}
    for _, head in _heads(cfg):
        for m in head.mask:
            anchors.setdefault(m, head.anchors[m])
    return tuple(anchors[i] for i in sorted(anchors))


def _check_mask_order(cfg: DarknetCfg) -> None:
    """Masks must not give a coarser head smaller anchor indices than a finer one."""
    shapes = infer_shapes(cfg)
    heads = sorted(((cfg.net.height / shapes[i].h, i, s) for i, s in _heads(cfg)), key=lambda t: t[0])
    for (fine_stride, fine_id, fine), (coarse_stride, coarse_id, coarse) in zip(heads, heads[1:]):
        if coarse_stride > fine_stride and min(coarse.mask) < max(fine.mask):
            raise CfgError(
                f"{cfg.source}:{coarse.line}: [yolo] layer {coarse_id} (stride {coarse_stride:g}) has mask "
                f"{','.join(map(str, coarse.mask))} below that of layer {fine_id} (stride {fine_stride:g}, mask "
                f"{','.join(map(str, fine.mask))}); anchors sorted by area would put large anchors on the finer "
                "grid: order the masks by stride first"
            )


def with_anchors(cfg: DarknetCfg, anchors: Sequence[Sequence[float]]) -> DarknetCfg:
    """Writes ``anchors`` (sorted by area here) into every ``[yolo]`` head, masks unchanged.

    Args:
        cfg: The network.
        anchors: ``K`` (w, h) pairs in input pixels; ``K`` must equal the cfg's
            anchor count (:func:`anchor_count`), which the masks index.

    Returns:
        The cfg with new ``anchors=`` in every head.

    Raises:
        CfgError: Wrong count, a non-positive size, or masks not ordered by stride.
    """
    pairs = [(float(w), float(h)) for w, h in anchors]
    count = anchor_count(cfg)
    if len(pairs) != count:
        raise CfgError(
            f"{cfg.source}: the heads index {count} anchors (num={count}); got {len(pairs)}: fit {count} "
            "anchors, or change the masks and num of the cfg first"
        )
    bad = [p for p in pairs if not (p[0] > 0 and p[1] > 0)]
    if bad:
        raise CfgError(f"{cfg.source}: anchors must have positive width and height, got {bad}")
    _check_mask_order(cfg)
    ordered = tuple(sorted(pairs, key=lambda p: p[0] * p[1]))
    layers = list(cfg.layers)
    for i, head in _heads(cfg):
        layers[i] = replace(head, anchors=ordered, num=len(ordered))
    return replace(cfg, layers=tuple(layers))
