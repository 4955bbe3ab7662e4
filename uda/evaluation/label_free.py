"""Label-free target scores for model selection, computed from the predictions alone (no label is read).

- ``entropy``: mean per-pixel prediction entropy divided by ``log C`` (0 = one-hot, 1 = uniform); the
  quantity ADVENT/MinEnt (Vu et al., "ADVENT: Adversarial Entropy Minimization for Domain Adaptation in Semantic
  Segmentation", CVPR 2019) minimise. Lower is more confident.
- ``im_score``: the information-maximisation score of SHOT (Liang et al., "Do We Really Need to Access the Source
  Data? Source Hypothesis Transfer for Unsupervised Domain Adaptation", ICML 2020),
  ``H(mean prediction) − mean H(prediction)``, divided by ``log C``; in [0, 1], **higher is better** (confident
  per pixel *and* diverse over classes). It is the negation of the IM loss.

[`evaluate`][uda.evaluation.evaluate] logs both at every evaluation (``result["label_free"]``); see
docs/evaluation.md.

Example:
    >>> import torch
    >>> s = LabelFreeScores(3)
    >>> logits = torch.tensor([[9.0, 0.0, 0.0], [0.0, 9.0, 0.0]]).view(2, 3, 1, 1)  # two confident pixels
    >>> s.update(logits)
    >>> r = s.compute()  # confident (entropy ~0) and two of three classes used (im_score ~ log 2 / log 3)
    >>> round(r["entropy"], 2), round(r["im_score"], 2)
    (0.0, 0.63)
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.distributed as dist

__all__ = ["LabelFreeScores"]


class LabelFreeScores:
    """Streaming label-free scores on the device (mean normalized entropy, IM score); no host sync per batch.

    Example:
        >>> s = LabelFreeScores(4)
        >>> s.update(torch.zeros(1, 4, 2, 2))  # uniform predictions
        >>> s.compute()["entropy"]
        1.0
    """

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self._sums: torch.Tensor | None = None  # (C + 2,) float64: [sum p per class ..., sum H, pixels]

    def update(self, logits: torch.Tensor) -> None:
        """Add (B, C, H, W) logits."""
        logp = logits.float().log_softmax(1)
        p = logp.exp()
        ent = -(p * logp).sum(1)  # (B, H, W) in nats
        sums = torch.cat(
            [p.sum((0, 2, 3)).double(), ent.sum().double().view(1), logits.new_tensor([ent.numel()]).double()]
        )
        self._sums = sums if self._sums is None else self._sums + sums

    def all_reduce_(self) -> LabelFreeScores:
        """Sum over processes when ``torch.distributed`` is initialized."""
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1 and self._sums is not None:
            dist.all_reduce(self._sums, op=dist.ReduceOp.SUM)
        return self

    def compute(self) -> dict[str, float]:
        """``{"entropy": …, "im_score": …}`` normalized by ``log C`` (NaN when nothing was seen)."""
        if self._sums is None or self.num_classes < 2:
            return {"entropy": float("nan"), "im_score": float("nan")}
        s = self._sums.cpu().numpy()
        n = s[-1]
        log_c = math.log(self.num_classes)
        mean_ent = s[-2] / n
        p_bar = s[:-2] / n
        p_bar = p_bar[p_bar > 0]
        ent_bar = float(-(p_bar * np.log(p_bar)).sum())
        return {"entropy": round(float(mean_ent / log_c), 6), "im_score": round(float((ent_bar - mean_ent) / log_c), 6)}
