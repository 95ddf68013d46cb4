"""The anchors a training run uses: fitted to its data, or the cfg's own (``model.fit_anchors``).

``auto`` (the default) fits anchors when the run trains **from scratch** (no
``weights=``) on data other than the built-in demo set: the zoo cfgs carry COCO's
anchors for 416-608 px, the demo cfg anchors for the demo's shapes at 160 px, and
neither need match a user's boxes at the training size. A run that starts from weights
keeps the cfg's anchors, since its heads learned offsets from them; ``true`` fits
anyway, ``false`` never fits. Under ``auto`` the fitted anchors replace the cfg's only
when they cover the boxes better (a higher mean best IoU, the quantity k-means
maximises, at no lower best possible recall); ``true`` always uses them.

The fit is `yolo_slim.data.anchors.fit_cfg_anchors`: k-means with darknet's 1 - IoU
distance on the training boxes letterboxed to the training size. The cfg with the
fitted anchors is written where the run writes its ``model.cfg``, and both figures
(BPR and mean best IoU, fitted and the cfg's) go into the run's log and summary.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from yolo_slim.errors import ConfigError

FitMode = Literal["auto", "always", "never"]


def fit_mode(value: Any) -> FitMode:
    """``model.fit_anchors`` checked: ``auto``, true or false.

    Raises:
        ConfigError: any other value.
    """
    if isinstance(value, bool):
        return "always" if value else "never"
    if isinstance(value, str) and value.strip().lower() in ("auto", "true", "false"):
        return {"auto": "auto", "true": "always", "false": "never"}[value.strip().lower()]  # type: ignore[return-value]
    raise ConfigError(f"model.fit_anchors: expected auto, true or false, got {value!r}")


@dataclass(frozen=True)
class AnchorChoice:
    """Which anchors a run uses and why.

    Attributes:
        used: ``fitted`` or ``cfg``.
        reason: one phrase saying why.
        cfg: the cfg the model is built from (the fitted cfg's path, or the given cfg).
        fit: the fit (`yolo_slim.data.anchors.AnchorFit`), when one was made; its recorded
            figures (a dict) for a choice read back from a run's ``anchors.json``.
    """

    used: Literal["fitted", "cfg"]
    reason: str
    cfg: str
    fit: Any = None

    def describe(self) -> str:
        """A few lines for the run's log: the decision, then the fit's own report."""
        which = "fitted to the training boxes" if self.used == "fitted" else "the cfg's own"
        head = f"anchors: {which} ({self.reason})"
        if not hasattr(self.fit, "format"):
            return head
        return head + "\n" + "\n".join(f"  {line}" for line in self.fit.format().splitlines())

    def to_dict(self) -> dict[str, Any]:
        fit = self.fit.to_dict() if hasattr(self.fit, "to_dict") else self.fit
        return {"used": self.used, "reason": self.reason, "cfg": self.cfg, "fit": fit}

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> AnchorChoice:
        """A choice from its `to_dict` record (its fit as the recorded figures)."""
        return cls(record["used"], record["reason"], record["cfg"], record.get("fit"))


def choose_anchors(mode: FitMode, *, model_cfg: str, weights: str | None, demo_data: bool, spec: Any, img_size: int,
                   out: Path, seed: int = 0) -> AnchorChoice:
    """Fit anchors when `mode` says so, write the cfg that has them, and say which are used.

    Args:
        mode: from `fit_mode`.
        model_cfg: the run's cfg (a zoo name or a ``.cfg`` path).
        weights: the run's initial weights (None: from scratch).
        demo_data: whether the data is the built-in demo set.
        spec: the training data (`yolo_slim.data.formats.DataSpec`).
        img_size: the training size in pixels.
        out: where to write the cfg with fitted anchors (the run's ``model.cfg``).
        seed: the fit's seed.

    Raises:
        CfgError: the cfg's masks do not rise with the stride.
        DataError: fewer usable boxes than anchors.
    """
    if mode == "never":
        return AnchorChoice("cfg", "model.fit_anchors=false", model_cfg)
    if mode == "auto" and weights:
        return AnchorChoice("cfg", "training starts from weights=, whose heads learned these anchors; model.fit_anchors=true fits anyway",
                            model_cfg)
    if mode == "auto" and demo_data:
        return AnchorChoice("cfg", "the built-in demo data, for which the demo cfg's anchors were made", model_cfg)
    from yolo_slim.darknet.cfg import write_cfg
    from yolo_slim.data.anchors import fit_cfg_anchors

    fitted_cfg, fit = fit_cfg_anchors(model_cfg, spec, img_size, seed=seed)
    if mode == "auto" and fit.current is not None and (
        fit.current.mean_iou >= fit.fitted.mean_iou or fit.current.bpr > fit.fitted.bpr
    ):
        return AnchorChoice("cfg", "they cover these boxes at least as well as fitted ones", model_cfg, fit)
    why = "model.fit_anchors=true" if mode == "always" else f"training from scratch on this data at {img_size} px; model.fit_anchors=auto"
    return AnchorChoice("fitted", why, str(write_cfg(fitted_cfg, out)), fit)


__all__ = ["AnchorChoice", "FitMode", "choose_anchors", "fit_mode"]
