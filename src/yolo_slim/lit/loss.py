"""The YOLOv3/v4 training loss for darknet heads.

Per head (ordered by stride, strides taken from feature-map sizes):

- *assignment*: a target is given to the anchors of a head whose shape matches it,
  either by width/height ratio (``max(r, 1/r) < anchor_t``, as in YOLOv4-era
  trainers) or by centred IoU (every anchor above ``iou_t`` plus the best anchor over
  all heads, darknet's rule). Optionally the two neighbouring cells nearest to the
  centre also predict it (useful with ``scale_x_y >= 2``).
- *box*: ``1 - CIoU`` (or GIoU) between the decoded box and the target, in grid
  units; decoding is `ops.decode.decode_cell_boxes`, the head's own, so ``scale_x_y`` and ``new_coords`` heads
  train with exactly the geometry they are evaluated with.
- *objectness*: BCE against the (detached, clamped) IoU of the assigned prediction,
  0 elsewhere, weighted per scale (``balance``).
- *classes*: BCE with one-hot targets.

``new_coords`` heads come after a logistic activation, so their objectness and class
values are probabilities and take plain BCE; classic heads take BCE on logits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from yolo_slim.errors import ConfigError
from yolo_slim.model.yolo_head import YoloHead
from yolo_slim.ops.boxes import bbox_iou
from yolo_slim.ops.decode import decode_cell_boxes

_DEFAULT_BALANCE = {1: (1.0,), 2: (4.0, 1.0), 3: (4.0, 1.0, 0.4), 4: (4.0, 1.0, 0.25, 0.06), 5: (4.0, 1.0, 0.25, 0.06, 0.02)}
_EXP_CLAMP = 6.0  # exp(6) = 403 anchor widths: larger boxes carry no gradient through tw


@dataclass(frozen=True)
class LossComponents:
    """The weighted loss terms of one batch (means over positives or cells, not scaled by the batch size)."""

    box: Tensor
    obj: Tensor
    cls: Tensor

    @property
    def total(self) -> Tensor:
        return self.box + self.obj + self.cls


class YoloLoss:
    """YOLOv3/v4 loss over the heads of a `Darknet` model.

    Args:
        heads: the model's `YoloHead`s (anchors in input pixels, ``scale_x_y``,
            ``new_coords``), in the order the model returns its outputs.
        box_gain, obj_gain, cls_gain: weights of the three terms.
        iou_kind: ``"ciou"`` or ``"giou"`` for the box term.
        assign: ``"ratio"`` (shape ratio below ``anchor_t``) or ``"iou"`` (centred
            IoU above ``iou_t`` plus the best anchor over all heads).
        anchor_t: largest width or height ratio between target and anchor.
        iou_t: IoU threshold of ``assign="iou"``.
        neighbour_cells: also assign the two adjacent cells nearest to the centre.
        balance: objectness weight per head, ordered by stride (smallest stride
            first); default from the number of heads (``[4.0, 1.0, 0.4]`` for 3).
        label_smoothing: class target smoothing epsilon.
    """

    def __init__(
        self,
        heads: Sequence[YoloHead],
        *,
        box_gain: float = 0.05,
        obj_gain: float = 1.0,
        cls_gain: float = 0.5,
        iou_kind: Literal["ciou", "giou"] = "ciou",
        assign: Literal["ratio", "iou"] = "ratio",
        anchor_t: float = 4.0,
        iou_t: float = 0.213,
        neighbour_cells: bool = False,
        balance: Sequence[float] | None = None,
        label_smoothing: float = 0.0,
    ) -> None:
        if iou_kind not in ("ciou", "giou"):
            raise ConfigError(f"loss.iou_kind must be 'ciou' or 'giou', got {iou_kind!r}")
        if assign not in ("ratio", "iou"):
            raise ConfigError(f"loss.assign must be 'ratio' or 'iou', got {assign!r}")
        if anchor_t <= 1.0:
            raise ConfigError(f"loss.anchor_t must be > 1, got {anchor_t}")
        if not 0.0 < iou_t < 1.0:
            raise ConfigError(f"loss.iou_t must be in (0, 1), got {iou_t}")
        if not 0.0 <= label_smoothing < 1.0:
            raise ConfigError(f"loss.label_smoothing must be in [0, 1), got {label_smoothing}")
        if not heads:
            raise ConfigError("loss: the model has no [yolo] head")
        if balance is not None and len(balance) != len(heads):
            raise ConfigError(f"loss.balance has {len(balance)} values for {len(heads)} heads")
        self.heads = list(heads)
        self.box_gain, self.obj_gain, self.cls_gain = float(box_gain), float(obj_gain), float(cls_gain)
        self.iou_kind = iou_kind
        self.assign = assign
        self.anchor_t = float(anchor_t)
        self.iou_t = float(iou_t)
        self.neighbour_cells = bool(neighbour_cells)
        self.balance = None if balance is None else [float(b) for b in balance]
        self.cls_pos = 1.0 - 0.5 * label_smoothing
        self.cls_neg = 0.5 * label_smoothing

    def _balance(self, strides: list[float]) -> list[float]:
        """Objectness weight of each head, given in stride order and mapped back to head order."""
        by_stride = self.balance or list(_DEFAULT_BALANCE.get(len(strides), (1.0,) * len(strides)))
        order = sorted(range(len(strides)), key=lambda i: strides[i])
        weights = [0.0] * len(strides)
        for rank, i in enumerate(order):
            weights[i] = by_stride[rank]
        return weights

    def __call__(self, outputs: Sequence[Tensor], targets: Tensor, input_hw: tuple[int, int]) -> tuple[Tensor, LossComponents]:
        """Compute the loss of one batch.

        Args:
            outputs: per head Tensor[B, A, H, W, 5+C], the model's train-mode output.
            targets: Tensor[M, 6]: image index in batch, class, cx, cy, w, h
                (normalised to the input).
            input_hw: network input (height, width), pixels.

        Returns:
            ``(total, components)``: ``total`` is the scalar, differentiable sum of
            the weighted box, obj and cls terms (batch means; the caller scales by
            the nominal batch size).
        """
        if len(outputs) != len(self.heads):
            raise ConfigError(f"loss: {len(outputs)} outputs for {len(self.heads)} heads")
        device = outputs[0].device
        strides = [input_hw[0] / p.shape[2] for p in outputs]
        balance = self._balance(strides)
        targets = targets.to(device=device, dtype=torch.float32)
        assignments = self._assign(outputs, targets, strides, input_hw)

        lbox = torch.zeros((), device=device)
        lobj = torch.zeros((), device=device)
        lcls = torch.zeros((), device=device)
        for i, (p, head) in enumerate(zip(outputs, self.heads)):
            p = p.float()
            obj_target = torch.zeros(p.shape[:4], device=device)
            b, a, gj, gi, tbox, tcls, anchors = assignments[i]
            if b.numel():
                ps = p[b, a, gj, gi]
                pxy, pwh = decode_cell_boxes(ps, anchors, head.scale_x_y, head.new_coords, max_log_wh=_EXP_CLAMP)
                iou = bbox_iou(torch.cat((pxy, pwh), 1), tbox, kind=self.iou_kind)
                lbox = lbox + (1.0 - iou).mean()
                obj_target[b, a, gj, gi] = iou.detach().clamp(min=0).to(obj_target.dtype)
                if p.shape[-1] > 5:
                    cls_target = torch.full_like(ps[:, 5:], self.cls_neg)
                    cls_target[torch.arange(len(tcls), device=device), tcls] = self.cls_pos
                    lcls = lcls + self._bce(ps[:, 5:], cls_target, head.new_coords)
            lobj = lobj + self._bce(p[..., 4], obj_target, head.new_coords) * balance[i]

        parts = LossComponents(box=lbox * self.box_gain, obj=lobj * self.obj_gain, cls=lcls * self.cls_gain)
        return parts.total, parts

    @staticmethod
    def _bce(pred: Tensor, target: Tensor, probabilities: bool) -> Tensor:
        if probabilities:
            return F.binary_cross_entropy(pred.clamp(1e-7, 1 - 1e-7), target)
        return F.binary_cross_entropy_with_logits(pred, target)

    # ------------------------------------------------------------------ assignment

    def _assign(
        self, outputs: Sequence[Tensor], targets: Tensor, strides: list[float], input_hw: tuple[int, int]
    ) -> list[tuple[Tensor, ...]]:
        """Per head: (image idx, anchor idx, gy, gx, target box xywh relative to the
        cell in grid units, class, anchor wh in grid units) of every positive."""
        device = targets.device
        best_global = None
        if self.assign == "iou" and targets.numel():
            # Best anchor over all heads, by centred IoU of the pixel-sized shapes.
            all_anchors = torch.cat([h.anchors.to(device) for h in self.heads])
            head_of = torch.cat([torch.full((len(h.anchors),), i, device=device) for i, h in enumerate(self.heads)])
            wh_px = targets[:, 4:6] * torch.tensor([input_hw[1], input_hw[0]], device=device, dtype=torch.float32)
            best_global = (head_of, _wh_iou(all_anchors, wh_px).argmax(0))

        out = []
        offset = 0
        for i, (p, head) in enumerate(zip(outputs, self.heads)):
            _, na, ny, nx, _ = p.shape
            anchors = head.anchors.to(device) / strides[i]  # (A, 2) grid units
            empty = torch.zeros(0, dtype=torch.long, device=device)
            if not targets.numel():
                out.append((empty, empty, empty, empty, torch.zeros(0, 4, device=device), empty, torch.zeros(0, 2, device=device)))
                offset += na
                continue
            scale = torch.tensor([nx, ny, nx, ny], device=device, dtype=torch.float32)
            t = targets[:, 2:6] * scale  # (M, 4) grid units
            if self.assign == "ratio":
                r = t[None, :, 2:4] / anchors[:, None]  # (A, M, 2)
                match = torch.max(r, 1.0 / r).max(2).values < self.anchor_t
            else:
                match = _wh_iou(anchors, t[:, 2:4]) > self.iou_t  # (A, M)
                heads_of, best = best_global
                local = best - offset
                is_here = (heads_of[best] == i) & (local >= 0) & (local < na)
                match[local[is_here], torch.nonzero(is_here).squeeze(1)] = True
            a_idx, m_idx = match.nonzero(as_tuple=True)
            gxy = t[m_idx, :2]
            cells = [gxy.floor().long()]
            a_list, m_list = [a_idx], [m_idx]
            if self.neighbour_cells:
                frac = gxy - gxy.floor()
                steps = torch.tensor([[1, 0], [0, 1]], device=device)
                for axis, size in ((0, nx), (1, ny)):
                    low = (frac[:, axis] < 0.5) & (gxy[:, axis] > 1.0)
                    high = (frac[:, axis] >= 0.5) & (gxy[:, axis] < size - 1.0)
                    for sel, sign in ((low, -1), (high, 1)):
                        cells.append(cells[0][sel] + sign * steps[axis])
                        a_list.append(a_idx[sel])
                        m_list.append(m_idx[sel])
            cell = torch.cat(cells)
            a_all, m_all = torch.cat(a_list), torch.cat(m_list)
            gi = cell[:, 0].clamp(0, nx - 1)
            gj = cell[:, 1].clamp(0, ny - 1)
            tbox = torch.cat((t[m_all, :2] - torch.stack((gi, gj), 1).float(), t[m_all, 2:4]), 1)
            out.append((targets[m_all, 0].long(), a_all, gj, gi, tbox, targets[m_all, 1].long(), anchors[a_all]))
            offset += na
        return out


def _wh_iou(anchors: Tensor, wh: Tensor) -> Tensor:
    """Centred IoU of anchor shapes Tensor[A, 2] and target shapes Tensor[M, 2]: Tensor[A, M]."""
    inter = torch.min(anchors[:, None], wh[None]).prod(2)
    return inter / (anchors.prod(1)[:, None] + wh.prod(1)[None] - inter)
