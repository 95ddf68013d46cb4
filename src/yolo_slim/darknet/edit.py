"""Edits of a parsed cfg that keep it a valid network: the class count, the input
size, and deleting layers (every reference renumbered)."""

from __future__ import annotations

from dataclasses import replace

from yolo_slim.darknet import limits
from yolo_slim.darknet.sections import ConvSection, DarknetCfg, LayerSection, RouteSection, ShortcutSection, previous_layer
from yolo_slim.errors import CfgError


def with_classes(cfg: DarknetCfg, classes: int) -> DarknetCfg:
    """Set the class count: every `[yolo] classes` and the filters of each head's conv.

    The conv feeding a head gets `len(mask) * (classes + 5)` filters; that is the
    edit darknet users most often get wrong by hand.
    """
    if classes < 1:
        raise CfgError(f"{cfg.source}: classes must be >= 1, got {classes}")
    if classes > limits.MAX_CLASSES:
        raise CfgError(f"{cfg.source}: classes must be <= {limits.MAX_CLASSES:,} (a plausible upper bound), got {classes:,}")
    layers = list(cfg.layers)
    for i in cfg.yolo_ids():
        head = layers[i]
        layers[i] = replace(head, classes=classes)
        producer = previous_layer(i)
        if not isinstance(layers[producer], ConvSection):
            raise CfgError(f"{cfg.source}:{head.line}: [yolo] layer {i} is not fed by a [convolutional] layer; cannot set its filters")
        layers[producer] = replace(layers[producer], filters=len(head.mask) * (classes + 5))
    return replace(cfg, layers=tuple(layers))


def with_input_size(cfg: DarknetCfg, height: int, width: int | None = None) -> DarknetCfg:
    """Set `[net]` height and width (pixels)."""
    width = height if width is None else width
    options = dict(cfg.net.options)
    options.update(width=str(width), height=str(height))
    return replace(cfg, net=replace(cfg.net, width=width, height=height, options=tuple(options.items())))


def remove_layers(cfg: DarknetCfg, removed: set[int] | frozenset[int]) -> tuple[DarknetCfg, dict[int, int]]:
    """Delete layers and renumber every reference.

    References to a removed layer are redirected to the nearest surviving earlier
    layer (a removed residual unit passes its input straight through), so this is
    meant for self-contained blocks such as residual units.

    Returns:
        The new cfg and the map old id -> new id of the kept layers.
    """
    keep = [i for i in range(len(cfg.layers)) if i not in removed]
    new_id: dict[int, int] = {old: new for new, old in enumerate(keep)}

    def redirect(ref: int) -> int:
        while ref in removed:
            ref -= 1
        return new_id[ref] if ref >= 0 else -1

    layers: list[LayerSection] = []
    for old in keep:
        s = cfg.layers[old]
        if isinstance(s, (RouteSection, ShortcutSection)):
            s = replace(s, sources=tuple(redirect(r) for r in s.sources))
        layers.append(s)
    return replace(cfg, layers=tuple(layers)), new_id
