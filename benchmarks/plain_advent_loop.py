"""A plain, hand-written AdvEnt training step: the baseline of the "no overhead from modularity" benchmark.

Paper: Vu et al., "ADVENT: Adversarial Entropy Minimization for Domain Adaptation in Semantic Segmentation"
(CVPR 2019). This is what a single-paper repository writes: the segmentation model, one FCDiscriminator per
output level on the weighted self-information maps ``-p·log2(p)/log2(C)``, SGD (heads 10×) + Adam, poly
decay, and the AdaptSegNet/ADVENT update order:

    zero grads → freeze D → source seg loss backward → target adversarial loss backward → unfreeze D →
    D loss on the detached source and target maps of this iteration → step G and D

It uses the same model class and the same discriminator class as ``uda`` (so the arithmetic is identical)
but none of the engine: no recipe, aligner, stage, trainer, registry-built losses, non-finite checks or logging.
It works on preloaded tensors; ``bench_train.py`` times it side by side with the engine.

Example:
    >>> import torch, uda
    >>> model = uda.create("model", "deeplabv2_tiny", num_classes=4)
    >>> loop = PlainAdvEnt(model, num_classes=4, ndf=8)
    >>> x, y = torch.rand(1, 3, 64, 128), torch.randint(0, 4, (1, 64, 128))
    >>> sorted(loop.step(x, y, torch.rand(1, 3, 64, 128)))
    ['adv', 'd', 'seg']
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from uda.discriminators.fc import FCDiscriminator


def _up(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(x, size=size, mode="bilinear", align_corners=True)


def _self_information(logits: torch.Tensor) -> torch.Tensor:
    p = logits.softmax(dim=1)
    return -p * torch.log2(p + 1e-30) / math.log2(logits.shape[1])


def _bce(d_out: torch.Tensor, label: float) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(d_out, torch.full_like(d_out, label))


class PlainAdvEnt:
    """The ADVENT update of the original code, written out by hand.

    Args:
        model: a segmentation model returning ``.logits`` (and ``.aux`` for the auxiliary level).
        num_classes: classes (discriminator input channels).
        ndf: discriminator width (64 = the paper's FCDiscriminator; 8 = ``fc_tiny``).
        lr: generator learning rate (heads at 10×); the discriminators use Adam 1e-4 (0.9, 0.99).
        lambdas: λ of the main and auxiliary adversarial terms.
        max_iters: the poly schedule's horizon.
    """

    def __init__(self, model: nn.Module, *, num_classes: int, ndf: int = 64, lr: float = 2.5e-4,
                 momentum: float = 0.9, weight_decay: float = 5e-4, lr_d: float = 1e-4,
                 lambdas: tuple[float, float] = (1e-3, 2e-4), aux_weight: float = 0.1, max_iters: int = 250000) -> None:
        self.model = model
        dev = next(model.parameters()).device
        self.d_main = FCDiscriminator(num_classes, ndf=ndf).to(dev)
        self.d_aux = FCDiscriminator(num_classes, ndf=ndf).to(dev)
        heads = {id(p) for p in model.head_parameters()}
        backbone = [p for p in model.parameters() if p.requires_grad and id(p) not in heads]
        head = [p for p in model.head_parameters() if p.requires_grad]
        self.opt_g = torch.optim.SGD([{"params": backbone, "lr": lr}, {"params": head, "lr": 10 * lr}],
                                     lr=lr, momentum=momentum, weight_decay=weight_decay)
        self.opt_d = torch.optim.Adam([*self.d_main.parameters(), *self.d_aux.parameters()], lr=lr_d,
                                      betas=(0.9, 0.99))
        self.base_g = [g["lr"] for g in self.opt_g.param_groups]
        self.base_d = [g["lr"] for g in self.opt_d.param_groups]
        self.lam_main, self.lam_aux = lambdas
        self.aux_weight = aux_weight
        self.max_iters = max_iters
        self.it = 0

    def train(self) -> None:
        """Training mode of the model and both discriminators."""
        for m in (self.model, self.d_main, self.d_aux):
            m.train()

    def _set_d_grad(self, flag: bool) -> None:
        for d in (self.d_main, self.d_aux):
            for p in d.parameters():
                p.requires_grad_(flag)

    def step(self, x_s: torch.Tensor, y_s: torch.Tensor, x_t: torch.Tensor) -> dict[str, torch.Tensor]:
        """One AdvEnt iteration on a source batch ``(x_s, y_s)`` and a target batch ``x_t``.

        Args:
            x_s: (B, 3, H, W) source images in [0, 1].
            y_s: (B, H, W) int64 trainIds (255 = ignore).
            x_t: (B, 3, H', W') target images in [0, 1].

        Returns:
            The detached losses ``seg``, ``adv`` and ``d``.
        """
        factor = (1 - self.it / self.max_iters) ** 0.9
        for g, base in zip(self.opt_g.param_groups, self.base_g):
            g["lr"] = base * factor
        for g, base in zip(self.opt_d.param_groups, self.base_d):
            g["lr"] = base * factor
        self.opt_g.zero_grad(set_to_none=True)
        self.opt_d.zero_grad(set_to_none=True)
        self._set_d_grad(False)
        size_s, size_t = tuple(x_s.shape[-2:]), tuple(x_t.shape[-2:])
        # Source: supervised loss on upsampled logits, backward right away (frees the source graph).
        out_s = self.model(x_s)
        ps_main, ps_aux = _up(out_s.logits, size_s), _up(out_s.aux, size_s)
        loss_seg = (F.cross_entropy(ps_main, y_s, ignore_index=255)
                    + self.aux_weight * F.cross_entropy(ps_aux, y_s, ignore_index=255))
        loss_seg.backward()
        # Target: fool the frozen discriminators (target → source label 0).
        out_t = self.model(x_t)
        et_main, et_aux = _self_information(_up(out_t.logits, size_t)), _self_information(_up(out_t.aux, size_t))
        loss_adv = self.lam_main * _bce(self.d_main(et_main), 0.0) + self.lam_aux * _bce(self.d_aux(et_aux), 0.0)
        loss_adv.backward()
        # Discriminators on the detached maps of this iteration.
        self._set_d_grad(True)
        es_main = _self_information(ps_main.detach())
        es_aux = _self_information(ps_aux.detach())
        loss_d_s = 0.5 * (_bce(self.d_main(es_main), 0.0) + _bce(self.d_aux(es_aux), 0.0))
        loss_d_s.backward()
        loss_d_t = 0.5 * (_bce(self.d_main(et_main.detach()), 1.0) + _bce(self.d_aux(et_aux.detach()), 1.0))
        loss_d_t.backward()
        self.opt_g.step()
        self.opt_d.step()
        self.it += 1
        return {"seg": loss_seg.detach(), "adv": loss_adv.detach(), "d": (loss_d_s + loss_d_t).detach()}
