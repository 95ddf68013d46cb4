"""yolo_slim.graph: the channel dependency graph derived from a cfg's edges.

`build_graph(cfg)` says which output channels must be cut together, which may not be
cut and why, which split routes constrain the cut, and which residual units can be
removed; `format_graph(graph)` prints it.
"""

from yolo_slim.graph.channels import ChannelGraph, ChannelGroup, ResidualUnit, build_graph
from yolo_slim.graph.format import format_graph

__all__ = ["ChannelGraph", "ChannelGroup", "ResidualUnit", "build_graph", "format_graph"]
