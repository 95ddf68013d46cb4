"""Which BatchNorm layers the sparsity penalty acts on.

The scopes come from the channel dependency graph, not from index rules:

- `prunable`: layers whose channels the channel pruner can cut;
- `prunable+shortcut`: also the layers tied together by residual connections
  (their channels can only be cut together, and layer pruning ranks residual units
  by the gamma of the conv before each shortcut);
- `all`: every conv with BatchNorm.
"""

from __future__ import annotations

from typing import Sequence

from yolo_slim.errors import ConfigError

SCOPES: tuple[str, ...] = ("prunable", "prunable+shortcut", "all")


def select_bn_layers(model, scope: str = "prunable", ignore: Sequence[int] = ()) -> list[int]:
    """Darknet layer ids of the BN layers in `scope`, minus `ignore`, ascending.

    Raises:
        ConfigError: an unknown scope, or an `ignore` id that is not a conv with BN.
    """
    if scope not in SCOPES:
        raise ConfigError(f"sparsity scope {scope!r} is not supported; expected one of {', '.join(SCOPES)}")
    with_bn = {i for i, block in model.conv_blocks().items() if block.bn is not None}
    unknown = sorted(set(ignore) - with_bn)
    if unknown:
        raise ConfigError(f"sparsity ignore ids {unknown} are not convolutional layers with batch_normalize=1 in {model.cfg.source}")
    if scope == "all":
        chosen = with_bn
    else:
        from yolo_slim.graph import build_graph

        graph = build_graph(model.cfg)
        chosen = {m for group in graph.groups if group.prunable > 0 for m in group.members}
        if scope == "prunable+shortcut":
            for unit in graph.units:
                chosen |= set(unit.convs) | set(graph.group_of(unit.last_conv).members)
        chosen &= with_bn
    return sorted(chosen - set(ignore))
