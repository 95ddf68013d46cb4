"""Plausible upper bounds on darknet cfg values.

Every bound is far above what any published darknet cfg uses (in brackets) and far
below what would make a terabyte `.weights` file or an allocation that fails after
minutes of work, so a typo such as ``filters=2000000000`` is refused at parse time
with the bound, the file and the line.
"""

from __future__ import annotations

MAX_FILTERS = 16_384
"""`[convolutional] filters` and `groups` (largest published: 1024)."""

MAX_WINDOW = 64
"""Kernel `size` of convolutions and maxpools, and explicit `padding` (largest: 13, SPP)."""

MAX_LAYER_STRIDE = 32
"""`stride` of one convolution, maxpool or upsample layer (largest: 2)."""

MAX_INPUT_SIZE = 8_192
"""`[net] width` / `height`, and any input size asked for, in pixels (largest: 1536)."""

MAX_CHANNELS = 64
"""`[net] channels` (3 for colour images)."""

MAX_CLASSES = 100_000
"""`[yolo] classes` (largest: 9418, YOLO9000)."""

MAX_ANCHORS = 1_024
"""`[yolo] num` and the number of anchor pairs (largest: 9)."""

MAX_ANCHOR_SIZE = 65_536.0
"""An anchor's width or height, input pixels (largest: a few hundred)."""

MAX_SCALE_X_Y = 16.0
"""`[yolo] scale_x_y` (largest: 2.0)."""

MAX_PARAMS = 2**31
"""Total parameters of a network, i.e. an 8 GiB `.weights` file (yolov4: 64 M)."""
