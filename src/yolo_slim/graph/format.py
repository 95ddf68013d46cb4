"""A printable summary of a channel dependency graph: what is prunable and why not."""

from __future__ import annotations

from yolo_slim.graph.channels import ChannelGraph


def _ids(ids: tuple[int, ...]) -> str:
    return ",".join(str(i) for i in ids)


def format_graph(graph: ChannelGraph) -> str:
    """One line per channel group: its conv members, channels, prunable count, notes.

    Groups without conv members (the network input) are not listed.
    """
    groups = [g for g in graph.groups if g.members]
    convs = sum(len(g.members) for g in groups)
    total = sum(g.channels for g in groups)
    prunable = sum(g.prunable for g in groups)
    lines = [
        f"channel dependency graph of {graph.cfg.source}: {len(graph.cfg.layers)} layers, {convs} conv layers, "
        f"{len(groups)} channel groups, {prunable} of {total} coupled channels prunable, "
        f"{len(graph.units)} removable residual units",
        "",
        f"{'group':>5}  {'channels':>8}  {'prunable':>8}  members / notes",
    ]
    for g in groups:
        lines.append(f"{g.index:>5}  {g.channels:>8}  {g.prunable:>8}  conv {_ids(g.members)}")
        for split in g.splits:
            section = graph.cfg.layers[split]
            lines.append(f"{'':>27}split by route {split} (groups={section.groups}): kept counts balanced per block")
        for why in g.reasons:
            lines.append(f"{'':>27}not prunable: {why}")
    if graph.units:
        lines += ["", "residual units (source -> convs -> shortcut):"]
        for u in graph.units:
            lines.append(f"  {u.source} -> {_ids(u.convs)} -> {u.shortcut}")
    return "\n".join(lines)
