"""CycleGAN image-to-image translation (stage 1 of MLFA; CyCADA-style source → target translation).

Paper: Zhu, Park, Isola & Efros, "Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial
Networks" (ICCV 2017). Generator: Johnson et al.'s ResNet (9 blocks, 64 filters, InstanceNorm without
affine parameters, reflection padding); discriminators: 70×70 PatchGANs; least-squares GAN loss; cycle weight
10 per direction; identity weight 0.5 × 10; discriminator loss × 0.5; an image pool of 50; every conv weight
drawn from N(0, 0.02) with zero bias (the CycleGAN code's ``init_type="normal"``, gain 0.02).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .._registry import register
from ..discriminators.patchgan import PatchGANDiscriminator
from ..losses import _functional as Fn
from ._base import Translator


class ResnetBlock(nn.Module):
    """Residual block: reflect-pad, 3×3 conv, IN, ReLU, reflect-pad, 3×3 conv, IN; added to the input."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(ch, ch, 3),
            nn.InstanceNorm2d(ch),
            nn.ReLU(inplace=True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(ch, ch, 3),
            nn.InstanceNorm2d(ch),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class ResnetGenerator(nn.Module):
    """CycleGAN's ResNet generator: c7s1-ngf, d2ngf, d4ngf, n×R4ngf, u2ngf, ungf, c7s1-3, tanh.

    Convs keep their bias (InstanceNorm has no affine parameters): 11,378,179 parameters at ``ngf=64,
    n_blocks=9``. Works on images in [−1, 1]; H and W divisible by 4 round-trip exactly.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        ngf: width of the first conv.
        n_blocks: number of residual blocks.

    Shape:
        (B, in_channels, H, W) in [−1, 1] → (B, out_channels, H, W) in [−1, 1].
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 3, *, ngf: int = 64, n_blocks: int = 9) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_channels, ngf, 7),
            nn.InstanceNorm2d(ngf),
            nn.ReLU(inplace=True),
        ]
        ch = ngf
        for _ in range(2):  # d128, d256
            layers += [nn.Conv2d(ch, ch * 2, 3, stride=2, padding=1), nn.InstanceNorm2d(ch * 2), nn.ReLU(inplace=True)]
            ch *= 2
        layers += [ResnetBlock(ch) for _ in range(n_blocks)]
        for _ in range(2):  # u128, u64
            layers += [
                nn.ConvTranspose2d(ch, ch // 2, 3, stride=2, padding=1, output_padding=1),
                nn.InstanceNorm2d(ch // 2),
                nn.ReLU(inplace=True),
            ]
            ch //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ch, out_channels, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        ph, pw = (-h) % 4, (-w) % 4
        if ph or pw:  # any size works: pad to a multiple of 4, crop back
            x = F.pad(x, (0, pw, 0, ph), mode="reflect")
        y = self.net(x)
        return y[..., :h, :w] if (ph or pw) else y


class ImagePool(nn.Module):
    """History of generated images (Shrivastava et al. 2017), as in CycleGAN.

    Until the pool holds ``size`` images, each incoming image is stored and returned. After that, with
    probability 0.5 a uniformly chosen stored image is returned and replaced by the incoming one, otherwise
    the incoming image is returned. Randomness comes from the pool's own ``torch.Generator`` (seeded), so
    the pool is deterministic; its images and generator state are part of ``state_dict()`` for exact resume.

    Stored images are kept as 8 bits per value over the generators' tanh range [-1, 1] (like fakes saved as
    PNGs): a quarter of the float32 memory and checkpoint size, and what is stored is exactly what resumes.
    A returned stored image is therefore quantized (error at most 1/255); an incoming image is returned as is.
    `release_training_state()` empties the pool once the translator is trained.

    Args:
        size: capacity; 0 returns the input unchanged.
        seed: seed of the pool's generator.

    Example:
        >>> pool = ImagePool(2)
        >>> pool(torch.zeros(1, 3, 4, 4)).shape
        torch.Size([1, 3, 4, 4])
    """

    def __init__(self, size: int = 50, *, seed: int = 0) -> None:
        super().__init__()
        self.size = size
        self.images: list[torch.Tensor] = []  # uint8, (1, C, H, W), on the device of the incoming images
        self.generator = torch.Generator().manual_seed(seed)

    @staticmethod
    def _pack(img: torch.Tensor) -> torch.Tensor:
        return ((img.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)

    @staticmethod
    def _unpack(q: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return (q.to(like.device).float() / 127.5 - 1).to(like.dtype)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Return a batch of the same shape, mixing incoming and stored images (inputs are detached)."""
        if self.size == 0:
            return images
        out = []
        for img in images.detach():
            img = img.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(self._pack(img))
                out.append(img)
            elif torch.rand((), generator=self.generator).item() > 0.5:
                i = int(torch.randint(0, self.size, (), generator=self.generator).item())
                out.append(self._unpack(self.images[i], img))
                self.images[i] = self._pack(img)
            else:
                out.append(img)
        return torch.cat(out, 0)

    def release_training_state(self) -> None:
        """Empty the pool (the translator stage is over: the pool is not used again)."""
        self.images = []

    def get_extra_state(self) -> dict[str, Any]:
        return {"images": [t.cpu() for t in self.images], "generator": self.generator.get_state()}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.images = [t.clone() if t.dtype == torch.uint8 else self._pack(t) for t in state.get("images", [])]
        if "generator" in state:
            self.generator.set_state(state["generator"])

    def extra_repr(self) -> str:
        return f"size={self.size}"


def init_normal_(module: nn.Module, std: float = 0.02) -> None:
    """CycleGAN's initialisation: conv / transposed-conv / linear weights N(0, ``std``), biases 0, norm scales
    N(1, ``std``) (the affine-free InstanceNorms of the networks here have none).

    Example:
        >>> g = ResnetGenerator(ngf=8, n_blocks=1)
        >>> init_normal_(g)
        >>> round(float(g.net[1].weight.detach().std()), 2), float(g.net[1].bias.detach().abs().max())
        (0.02, 0.0)
    """
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            w = getattr(m, "weight_orig", m.weight)  # spectral-normed convs keep the raw weight there
            nn.init.normal_(w, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.modules.batchnorm._NormBase) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)


def _to_tanh(x: torch.Tensor) -> torch.Tensor:
    return x * 2.0 - 1.0


def _from_tanh(y: torch.Tensor) -> torch.Tensor:
    return (y + 1.0) * 0.5


@register("translator", "cyclegan")
class CycleGAN(Translator):
    """CycleGAN: generators ``g_st`` (source → target), ``g_ts`` and PatchGANs ``d_t``, ``d_s``.

    ``forward(source)`` translates source images to the target style (call in eval/no-grad for inference).
    Training is driven by the loop: `generator_losses` with `discriminator_modules` frozen,
    then `discriminator_losses` on the returned state; its optimizer is the recipe's ``translator_optim``.
    The networks work in [−1, 1]; the conversion from/to [0, 1] happens inside. Losses are computed in
    [−1, 1] like the original.

    Args:
        ngf: generator width (64).
        n_blocks: residual blocks per generator (9).
        ndf: discriminator width (64).
        pool_size: image pool capacity (50).
        lambda_cycle: cycle weight per direction (10).
        lambda_identity: identity weight relative to ``lambda_cycle`` (0.5 → 5); 0 disables it.
        gan_loss: ``"lsgan"`` (the paper), ``"bce"`` or ``"hinge"``.
        seed: seed of the image pools.

    Example:
        >>> import uda, torch
        >>> cg = uda.create("translator", "cyclegan_tiny")
        >>> losses, state = cg.generator_losses(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32))
        >>> sorted(losses), sorted(cg.discriminator_losses(state))
        (['cycle_s', 'cycle_t', 'gan_st', 'gan_ts', 'idt_s', 'idt_t'], ['d_s', 'd_t'])
    """

    spec_name = "cyclegan"

    def __init__(
        self,
        *,
        ngf: int = 64,
        n_blocks: int = 9,
        ndf: int = 64,
        pool_size: int = 50,
        lambda_cycle: float = 10.0,
        lambda_identity: float = 0.5,
        gan_loss: str = "lsgan",
        seed: int = 0,
    ) -> None:
        super().__init__()
        Fn._check_gan(gan_loss)
        self.g_st = ResnetGenerator(ngf=ngf, n_blocks=n_blocks)
        self.g_ts = ResnetGenerator(ngf=ngf, n_blocks=n_blocks)
        self.d_t = PatchGANDiscriminator(3, ndf=ndf)
        self.d_s = PatchGANDiscriminator(3, ndf=ndf)
        for net in (self.g_st, self.g_ts, self.d_t, self.d_s):
            init_normal_(net)
        self.pool_t = ImagePool(pool_size, seed=seed)
        self.pool_s = ImagePool(pool_size, seed=seed + 1)
        self.lambda_cycle = lambda_cycle
        self.lambda_identity = lambda_identity
        self.gan_loss = gan_loss
        self.spec_kwargs = {
            "ngf": ngf,
            "n_blocks": n_blocks,
            "ndf": ndf,
            "pool_size": pool_size,
            "lambda_cycle": lambda_cycle,
            "lambda_identity": lambda_identity,
            "gan_loss": gan_loss,
            "seed": seed,
        }

    def forward(self, source: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
        """Source → target style, [0, 1] in and out (``target`` is ignored)."""
        return _from_tanh(self.g_st(_to_tanh(source)))

    def inverse(self, target: torch.Tensor) -> torch.Tensor:
        """Target → source style, [0, 1] in and out."""
        return _from_tanh(self.g_ts(_to_tanh(target)))

    def _gan(self, logits: torch.Tensor, label: float, for_discriminator: bool) -> torch.Tensor:
        return Fn.gan_loss(logits, label, self.gan_loss, for_discriminator=for_discriminator)

    def generator_losses(
        self, source: torch.Tensor, target: torch.Tensor
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """The weighted generator terms and the state the discriminator step needs.

        Args:
            source: (B, 3, H, W) source images in [0, 1].
            target: (B', 3, H, W) target images in [0, 1].

        Returns:
            ``(losses, state)``: losses ``gan_st``, ``gan_ts`` (fool ``d_t``/``d_s``), ``cycle_s``, ``cycle_t``
            (× ``lambda_cycle``), ``idt_s``, ``idt_t`` (× ``lambda_cycle·lambda_identity``, when > 0); state
            holds the real images and detached fakes/reconstructions in [−1, 1].
        """
        real_s, real_t = _to_tanh(source), _to_tanh(target)
        fake_t = self.g_st(real_s)
        rec_s = self.g_ts(fake_t)
        fake_s = self.g_ts(real_t)
        rec_t = self.g_st(fake_s)
        losses = {
            "gan_st": self._gan(self.d_t(fake_t), 1.0, False),
            "gan_ts": self._gan(self.d_s(fake_s), 1.0, False),
            "cycle_s": self.lambda_cycle * Fn.cycle_l1(rec_s, real_s),
            "cycle_t": self.lambda_cycle * Fn.cycle_l1(rec_t, real_t),
        }
        if self.lambda_identity > 0:
            w = self.lambda_cycle * self.lambda_identity
            losses["idt_t"] = w * Fn.identity_l1(self.g_st(real_t), real_t)
            losses["idt_s"] = w * Fn.identity_l1(self.g_ts(real_s), real_s)
        state = {
            "real_s": real_s.detach(),
            "real_t": real_t.detach(),
            "fake_t": fake_t.detach(),
            "fake_s": fake_s.detach(),
            "rec_s": rec_s.detach(),
            "rec_t": rec_t.detach(),
        }
        return losses, state

    def discriminator_losses(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``d_t = ½[L(D_t(real_t), 1) + L(D_t(pool(fake_t)), 0)]`` and ``d_s`` likewise.

        Args:
            state: the second value returned by `generator_losses`.

        Returns:
            ``{"d_t": ..., "d_s": ...}``.
        """
        fake_t = self.pool_t(state["fake_t"])
        fake_s = self.pool_s(state["fake_s"])
        d_t = 0.5 * (self._gan(self.d_t(state["real_t"]), 1.0, True) + self._gan(self.d_t(fake_t), 0.0, True))
        d_s = 0.5 * (self._gan(self.d_s(state["real_s"]), 1.0, True) + self._gan(self.d_s(fake_s), 0.0, True))
        return {"d_t": d_t, "d_s": d_s}

    @staticmethod
    def visuals(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The state's images in [0, 1]: ``source``, ``translated``, ``reconstructed`` (and the target side)."""
        return {
            "source": _from_tanh(state["real_s"]),
            "translated": _from_tanh(state["fake_t"]),
            "reconstructed": _from_tanh(state["rec_s"]),
            "target": _from_tanh(state["real_t"]),
            "target_to_source": _from_tanh(state["fake_s"]),
        }

    def generator_parameters(self) -> list[nn.Parameter]:
        """Parameters of ``g_st`` and ``g_ts`` (one Adam optimizer)."""
        return [*self.g_st.parameters(), *self.g_ts.parameters()]

    def discriminator_parameters(self) -> list[nn.Parameter]:
        """Parameters of ``d_t`` and ``d_s`` (one Adam optimizer)."""
        return [*self.d_t.parameters(), *self.d_s.parameters()]

    def discriminator_modules(self) -> list[nn.Module]:
        """The modules to freeze during the generator phase."""
        return [self.d_t, self.d_s]


@register("translator", "cyclegan_tiny")
def cyclegan_tiny(
    *,
    ngf: int = 8,
    n_blocks: int = 2,
    ndf: int = 8,
    pool_size: int = 8,
    lambda_cycle: float = 10.0,
    lambda_identity: float = 0.5,
    gan_loss: str = "lsgan",
    seed: int = 0,
) -> CycleGAN:
    """CycleGAN with ``ngf=8``, 2 residual blocks, ``ndf=8``, pool 8: for tests and the CPU demo."""
    return CycleGAN(
        ngf=ngf,
        n_blocks=n_blocks,
        ndf=ndf,
        pool_size=pool_size,
        lambda_cycle=lambda_cycle,
        lambda_identity=lambda_identity,
        gan_loss=gan_loss,
        seed=seed,
    )
