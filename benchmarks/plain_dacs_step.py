"""A plain, hand-written DACS training step: the baseline of the `dacs` engine-overhead benchmark.

Papers: Tranheden et al., "DACS: Domain Adaptation via Cross-domain Mixed Sampling" (WACV 2021); Hoyer et al.,
"DAFormer" (CVPR 2022). This is what a single-paper repository writes, on preloaded tensors:

    zero grads → source CE → teacher softmax on the target → pseudo-labels + one confidence weight →
    ClassMix (half the classes of each source label) → strong augmentation of the mixed image →
    weighted CE on the mixed image → backward → optimizer step → poly schedule → EMA teacher update

The teacher is DAFormer's: a copy in training mode with dropout switched off (its batch norm normalises with the
target batch), whose parameters (not buffers) follow the student by EMA.

It uses the same model class and the same strong-augmentation module as ``uda`` (so the arithmetic is the same)
but none of the engine: no recipe, registry, stage, trainer, non-finite checks or logging. ``bench_train.py
--dacs`` times it side by side with the engine's ``dacs`` recipe.

Example:
    >>> import torch, uda
    >>> model = uda.create("model", "deeplabv2_tiny", num_classes=4, multi_level=False)
    >>> step = PlainDACS(model, lr=1e-3)
    >>> x, y = torch.rand(2, 3, 32, 64), torch.randint(0, 4, (2, 32, 64))
    >>> sorted(step.step(x, y, torch.rand(2, 3, 32, 64)))
    ['mix', 'seg']
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from uda.selftraining import StrongAugmentation


def _ce(logits: torch.Tensor, label: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    logits = F.interpolate(logits, size=label.shape[-2:], mode="bilinear", align_corners=False)
    loss = F.cross_entropy(logits, label, ignore_index=255, reduction="none")
    return (loss if weight is None else loss * weight).mean()


class PlainDACS:
    """The DACS update written out by hand.

    Args:
        model: a segmentation model returning ``.logits``.
        optimizer: ``"sgd"`` (DACS) or ``"adamw"`` (DAFormer).
        lr: backbone learning rate (heads at 10×).
        alpha: EMA momentum ceiling.
        threshold: pseudo-label confidence threshold.
        max_iters: the poly schedule's horizon.
    """

    def __init__(self, model: nn.Module, *, optimizer: str = "sgd", lr: float = 2.5e-4, momentum: float = 0.9,
                 weight_decay: float = 5e-4, alpha: float = 0.99, threshold: float = 0.968, max_iters: int = 400,
                 power: float = 0.9) -> None:
        self.model, self.alpha, self.threshold = model, alpha, threshold
        self.teacher = copy.deepcopy(model).train()
        for m in self.teacher.modules():
            if isinstance(m, nn.modules.dropout._DropoutNd):
                m.eval()
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        head = {id(p) for p in model.head_parameters()}
        groups = [{"params": [p for p in model.parameters() if id(p) not in head], "lr": lr},
                  {"params": model.head_parameters(), "lr": 10 * lr}]
        if optimizer == "adamw":
            self.opt = torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.999), weight_decay=weight_decay)
        else:
            self.opt = torch.optim.SGD(groups, lr=lr, momentum=momentum, weight_decay=weight_decay)
        self.base = [g["lr"] for g in self.opt.param_groups]
        self.augment = StrongAugmentation()
        self.it, self.max_iters, self.power = 0, max_iters, power

    def train(self) -> None:
        self.model.train()

    def step(self, x_s: torch.Tensor, y_s: torch.Tensor, x_t: torch.Tensor) -> dict[str, torch.Tensor]:
        self.opt.zero_grad(set_to_none=True)
        seg = _ce(self.model(x_s).logits, y_s)
        with torch.no_grad():
            logits = F.interpolate(self.teacher(x_t).logits, size=x_t.shape[-2:], mode="bilinear",
                                   align_corners=False)
            prob, pseudo = torch.softmax(logits, 1).max(1)
            weight = (prob >= self.threshold).float().mean().expand_as(prob)
            masks = []
            for lab in y_s:  # half of each image's classes (DACS)
                cls = torch.unique(lab)
                masks.append(torch.isin(lab, cls[torch.randperm(len(cls))[: (len(cls) + 1) // 2]]))
            m = torch.stack(masks)
            x_m = self.augment(torch.where(m[:, None], x_s, x_t))
            y_m = torch.where(m, y_s, pseudo)
            w_m = torch.where(m, torch.ones_like(weight), weight)
        mix = _ce(self.model(x_m).logits, y_m, w_m)
        (seg + mix).backward()
        self.opt.step()
        self.it += 1
        f = max(0.0, 1 - self.it / self.max_iters) ** self.power
        for g, b in zip(self.opt.param_groups, self.base):
            g["lr"] = b * f
        a = min(1 - 1 / (self.it + 1), self.alpha)
        with torch.no_grad():
            for t, s in zip(self.teacher.parameters(), self.model.parameters()):
                t.mul_(a).add_(s, alpha=1 - a)
        return {"seg": seg.detach(), "mix": mix.detach()}
