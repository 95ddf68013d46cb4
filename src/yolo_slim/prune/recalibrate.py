"""BatchNorm re-calibration: re-estimate running statistics after surgery.

Pruning (and beta folding at borders) shifts the statistics every BN layer sees. A few
hundred training images through the network in train mode, with BN's cumulative
moving average (`momentum=None`: every batch weighs the same), give statistics that
match the compact network; no weights are trained. Cheap, and it recovers a good part
of the accuracy lost before fine-tuning.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from yolo_slim.errors import PruneError


def _images(batch: Any) -> Tensor:
    if isinstance(batch, Tensor):
        return batch
    if isinstance(batch, Mapping):
        for key in ("images", "image", "img"):
            if key in batch:
                return batch[key]
    if isinstance(batch, (tuple, list)) and batch and isinstance(batch[0], Tensor):
        return batch[0]
    raise PruneError(f"recalibrate_bn: cannot find the images in a batch of type {type(batch).__name__}; expected a tensor, (images, ...) or {{'images': ...}}")


def recalibrate_bn(model: nn.Module, dataloader: Iterable[Any], n_images: int) -> int:
    """Re-estimate every BatchNorm's running mean and variance on `n_images` images.

    The model's parameters are not changed; its train/eval state and each BN's
    momentum are restored afterwards, and on failure the old statistics too.

    Args:
        model: a `Darknet` (its `forward_maps` is used) or any module taking images.
        dataloader: yields image batches Tensor[B, 3, H, W] in [0, 1], alone or as the
            first item of a tuple, or under "images" in a dict.
        n_images: how many images to use (>= 1); the last batch is cut to fit.

    Returns:
        The number of images used (fewer when the loader runs out).

    Raises:
        PruneError: `n_images` < 1, no BatchNorm layer, or the loader yields no images.
    """
    if int(n_images) != n_images or n_images < 1:
        raise PruneError(f"recalibrate_bn: n_images={n_images} must be an integer >= 1")
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        raise PruneError("recalibrate_bn: the model has no BatchNorm layer")
    states = {m: m.training for m in model.modules()}
    momenta = {bn: bn.momentum for bn in bns}
    device = next(model.parameters()).device
    forward = getattr(model, "forward_maps", model)
    saved = {bn: (bn.running_mean.clone(), bn.running_var.clone(), bn.num_batches_tracked.clone()) for bn in bns if bn.track_running_stats}
    seen = 0
    try:
        for bn in bns:
            bn.reset_running_stats()
            bn.momentum = None
        model.train()
        with torch.no_grad():
            for batch in dataloader:
                images = _images(batch)[: n_images - seen].to(device)
                if images.shape[0] == 0:
                    break
                if images.dtype == torch.uint8:
                    images = images.float() / 255.0
                forward(images)
                seen += images.shape[0]
                if seen >= n_images:
                    break
    except BaseException:
        _restore(saved)
        raise
    finally:
        for bn, momentum in momenta.items():
            bn.momentum = momentum
        for module, training in states.items():
            module.training = training
    if seen == 0:
        _restore(saved)
        raise PruneError("recalibrate_bn: the data loader yielded no images")
    return seen


def _restore(saved: dict) -> None:
    with torch.no_grad():
        for bn, (mean, var, count) in saved.items():
            bn.running_mean.copy_(mean)
            bn.running_var.copy_(var)
            bn.num_batches_tracked.copy_(count)
