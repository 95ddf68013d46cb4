"""The channel dependency graph of a darknet network, derived from its cfg edges.

Every conv output channel (and every image channel) is a *node*. Each layer's output
position carries exactly one node's values, found by walking the cfg edges:

- a conv creates its own nodes; maxpool, upsample and `[yolo]` pass their input through;
- a route concatenates its inputs' positions, each sliced to `group_id` when split;
- a shortcut sums its inputs position by position, so channel c of every input is
  *coupled*: they can only be cut together (the union of a residual stream);
- a depthwise conv (groups == input channels == filters) maps input c to output c,
  so both sides are coupled.

Coupled nodes form one *coupled channel*, the unit a pruning plan keeps or drops.
Layers whose channels are coupled form a *channel group*, the unit the summary prints.

A split route (`groups=G`, `group_id=g`) reads positions by block. It is handled
exactly: the plan must keep the same number of positions in each of the source's G
blocks (a *balance constraint*), then block g of the compact source holds exactly the
kept positions of the original block g.

Nothing here is an index heuristic: any valid cfg gets its graph from the same rules.
The split into graph / importance / plan / surgery follows the four questions Torch-
Pruning's DependencyGraph design separates; Torch-Pruning mishandles channel slicing,
which the balance constraints fix.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from yolo_slim.darknet.cfg import DarknetCfg
from yolo_slim.darknet.sections import (
    ConvSection,
    MaxPoolSection,
    RouteSection,
    ShortcutSection,
    UpsampleSection,
    YoloSection,
    layer_input,
    section_name,
)
from yolo_slim.darknet.shapes import Shape, infer_shapes

IMAGE = -1  # layer id of the network input in node records


@dataclass(frozen=True)
class ResidualUnit:
    """A removable residual unit: a chain of convs closed by a linear shortcut.

    Attributes:
        source: the layer the shortcut adds back (the unit's input).
        convs: the conv layer ids of the chain, `source + 1 .. shortcut - 1`.
        shortcut: the shortcut layer id.
    """

    source: int
    convs: tuple[int, ...]
    shortcut: int

    @property
    def layers(self) -> tuple[int, ...]:
        """Every layer id the unit occupies (convs and shortcut)."""
        return (*self.convs, self.shortcut)

    @property
    def last_conv(self) -> int:
        """The conv right before the shortcut (ranked by its mean |gamma|)."""
        return self.convs[-1]


@dataclass(frozen=True)
class ChannelGroup:
    """Conv layers whose output channels are coupled (cut together).

    Attributes:
        index: position in `ChannelGraph.groups`.
        members: conv layer ids, ascending.
        channels: number of coupled channels (decisions) in the group.
        prunable: number of those that may be cut.
        reasons: why channels may not be cut (empty when all are prunable).
        splits: ids of split routes reading the group (kept counts balanced per block).
    """

    index: int
    members: tuple[int, ...]
    channels: int
    prunable: int
    reasons: tuple[str, ...]
    splits: tuple[int, ...]

    @property
    def fully_prunable(self) -> bool:
        return self.prunable == self.channels and not self.reasons


@dataclass(frozen=True)
class ChannelGraph:
    """Channel coupling of one cfg.

    Attributes:
        cfg: the network.
        shapes: output shape of every layer at the `[net]` size.
        positions: per layer, Int[C_L] coupled-channel id of each output position.
        node_layer, node_channel: per node, the conv layer id (-1 = image) and channel
            index it stands for; nodes are numbered image first, then convs in order.
        node_coupled: per node, its coupled-channel id.
        conv_nodes: conv layer id -> id of its first node (its channel c is node + c).
        num_coupled: number of coupled channels.
        prunable: Bool[num_coupled], whether each coupled channel may be cut.
        coupled_group: Int[num_coupled], the channel group of each coupled channel.
        groups: the channel groups.
        balance: split-route constraints: each is a tuple of G Int arrays, the
            coupled ids of the positions in each block of one split source.
        balance_route: the split route id of each balance constraint.
        units: removable residual units, in layer order.
    """

    cfg: DarknetCfg
    shapes: tuple[Shape, ...]
    positions: tuple[np.ndarray, ...]
    node_layer: np.ndarray
    node_channel: np.ndarray
    node_coupled: np.ndarray
    conv_nodes: dict[int, int]
    num_coupled: int
    prunable: np.ndarray
    coupled_group: np.ndarray
    groups: tuple[ChannelGroup, ...]
    balance: tuple[tuple[np.ndarray, ...], ...]
    balance_route: tuple[int, ...]
    units: tuple[ResidualUnit, ...]

    def conv_coupled(self, layer: int) -> np.ndarray:
        """Int[filters]: the coupled-channel id of each output channel of conv `layer`."""
        return self.positions[layer]

    def carriers(self, layer: int, channel: int) -> list[tuple[int, int]]:
        """The (conv layer id, channel) pairs coupled with output `channel` of `layer`.

        Layer -1 stands for the network input.
        """
        return self.members_of(int(self.positions[layer][channel]))

    def members_of(self, coupled: int) -> list[tuple[int, int]]:
        """The (conv layer id, channel) pairs of one coupled channel (-1 = network input)."""
        nodes = np.flatnonzero(self.node_coupled == coupled)
        return [(int(self.node_layer[n]), int(self.node_channel[n])) for n in nodes]

    def unit_of(self, layers: tuple[int, ...]) -> ResidualUnit:
        """The residual unit occupying exactly `layers` (an entry of a plan's ``removed_units``).

        Raises:
            KeyError: no removable unit of this graph has these layers.
        """
        for unit in self.units:
            if unit.layers == tuple(layers):
                return unit
        raise KeyError(f"layers {list(layers)} are not a removable residual unit")

    def group_of(self, layer: int) -> ChannelGroup:
        """The channel group holding conv `layer`'s outputs."""
        for group in self.groups:
            if layer in group.members:
                return group
        raise KeyError(f"layer {layer} is not a conv layer")


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = np.arange(n)

    def find(self, a: int) -> int:
        parent = self.parent
        root = a
        while parent[root] != root:
            root = parent[root]
        while parent[a] != root:
            parent[a], a = root, parent[a]
        return int(root)

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            if ra < rb:
                self.parent[rb] = ra
            else:
                self.parent[ra] = rb

    def roots(self) -> np.ndarray:
        return np.array([self.find(i) for i in range(len(self.parent))], dtype=np.int64)


def _find_units(cfg: DarknetCfg, readers: dict[int, set[int]]) -> tuple[ResidualUnit, ...]:
    units = []
    for s_id, s in enumerate(cfg.layers):
        if not isinstance(s, ShortcutSection) or len(s.sources) != 1 or s.activation != "linear":
            continue
        source = s.sources[0]
        chain = tuple(range(source + 1, s_id))
        if source < 0 or not chain:
            continue
        if not all(isinstance(cfg.layers[i], ConvSection) for i in chain):
            continue
        # the chain must be private: each conv read only by the next layer of the unit
        if any(readers.get(i, set()) - {i + 1} for i in chain):
            continue
        units.append(ResidualUnit(source, chain, s_id))
    return tuple(units)


def build_graph(cfg: DarknetCfg) -> ChannelGraph:
    """Derive the channel dependency graph of `cfg` from its edges.

    Raises:
        CfgError: if the cfg's shapes are invalid at its `[net]` size.
    """
    shapes = tuple(infer_shapes(cfg))
    image_c = cfg.net.channels
    conv_nodes: dict[int, int] = {}
    total = image_c
    for i, s in enumerate(cfg.layers):
        if isinstance(s, ConvSection):
            conv_nodes[i] = total
            total += s.filters
    node_layer = np.full(total, IMAGE, dtype=np.int64)
    node_channel = np.arange(total, dtype=np.int64)
    for i, start in conv_nodes.items():
        c = cfg.layers[i].filters
        node_layer[start : start + c] = i
        node_channel[start : start + c] = np.arange(c)

    uf = _UnionFind(total)
    reasons: dict[int, list[str]] = {}  # node -> reasons it may not be cut

    def block(nodes: np.ndarray, why: str) -> None:
        for n in nodes:
            reasons.setdefault(int(n), []).append(why)

    image = np.arange(image_c, dtype=np.int64)
    block(image, "carries the network input")
    pos: list[np.ndarray] = []
    readers: dict[int, set[int]] = {}
    splits: list[tuple[int, np.ndarray, int]] = []  # route id, source positions (nodes), groups
    for i, s in enumerate(cfg.layers):
        for src in cfg.inputs(i):
            readers.setdefault(src, set()).add(i)
        prev = layer_input(pos, i, image)
        where = f"{section_name(s)} layer {i}"
        if isinstance(s, ConvSection):
            own = np.arange(conv_nodes[i], conv_nodes[i] + s.filters, dtype=np.int64)
            if s.is_depthwise(len(prev)):
                for a, b in zip(own, prev):
                    uf.union(int(a), int(b))
            elif s.groups > 1:
                block(prev, f"read by grouped conv {i} (groups={s.groups})")
                block(own, f"output of grouped conv {i} (groups={s.groups})")
            if not s.batch_normalize:
                block(own, f"conv {i} has no batch_normalize, so no gamma to rank")
            pos.append(own)
        elif isinstance(s, (MaxPoolSection, UpsampleSection)):
            pos.append(prev)
        elif isinstance(s, YoloSection):
            block(prev, f"feeds [yolo] layer {i}")
            pos.append(prev)
        elif isinstance(s, ShortcutSection):
            for src in s.sources:
                for a, b in zip(prev, pos[src]):
                    uf.union(int(a), int(b))
            pos.append(prev)
        elif isinstance(s, RouteSection):
            parts = []
            for src in s.sources:
                p = pos[src]
                if s.groups > 1:
                    size = len(p) // s.groups
                    splits.append((i, p, s.groups))
                    p = p[s.group_id * size : (s.group_id + 1) * size]
                parts.append(p)
            pos.append(np.concatenate(parts))
        else:  # pragma: no cover - the section union is closed
            raise TypeError(where)

    roots = uf.roots()
    unique_roots, node_coupled = np.unique(roots, return_inverse=True)
    num_coupled = len(unique_roots)
    positions = tuple(node_coupled[p] for p in pos)

    coupled_reasons: dict[int, list[str]] = {}
    for n, why in reasons.items():
        bucket = coupled_reasons.setdefault(int(node_coupled[n]), [])
        for w in why:
            if w not in bucket:
                bucket.append(w)
    prunable = np.ones(num_coupled, dtype=bool)
    prunable[list(coupled_reasons)] = False

    # channel groups: conv layers linked through shared coupled channels
    layer_uf = _UnionFind(num_coupled)
    conv_ids = list(conv_nodes)
    for i in conv_ids:
        ids = positions[i]
        for other in ids[1:]:
            layer_uf.union(int(ids[0]), int(other))
    for n in range(image_c):  # image channels join as one pseudo-member
        layer_uf.union(int(node_coupled[0]), int(node_coupled[n]))
    coupled_root = layer_uf.roots()
    group_roots, coupled_group = np.unique(coupled_root, return_inverse=True)
    members: list[list[int]] = [[] for _ in group_roots]
    for i in conv_ids:
        members[int(coupled_group[positions[i][0]])].append(i)

    balance = []
    balance_route = []
    split_groups: dict[int, list[int]] = {}
    for route, src_nodes, g in splits:
        blocks = tuple(np.array_split(node_coupled[src_nodes], g))
        balance.append(blocks)
        balance_route.append(route)
        for gid in np.unique(coupled_group[node_coupled[src_nodes]]):
            lst = split_groups.setdefault(int(gid), [])
            if route not in lst:
                lst.append(route)

    groups = []
    for gid in range(len(group_roots)):
        coupled = np.flatnonzero(coupled_group == gid)
        why: list[str] = []
        for c in coupled:
            for w in coupled_reasons.get(int(c), ()):
                if w not in why:
                    why.append(w)
        groups.append(
            ChannelGroup(
                index=gid,
                members=tuple(sorted(members[gid])),
                channels=len(coupled),
                prunable=int(prunable[coupled].sum()),
                reasons=tuple(why),
                splits=tuple(split_groups.get(gid, ())),
            )
        )

    return ChannelGraph(
        cfg=cfg,
        shapes=shapes,
        positions=positions,
        node_layer=node_layer,
        node_channel=node_channel,
        node_coupled=node_coupled,
        conv_nodes=conv_nodes,
        num_coupled=num_coupled,
        prunable=prunable,
        coupled_group=coupled_group,
        groups=tuple(groups),
        balance=tuple(balance),
        balance_route=tuple(balance_route),
        units=_find_units(cfg, readers),
    )
