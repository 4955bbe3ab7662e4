"""The three setups every recipe runs on: GTA5 → Cityscapes, SYNTHIA → Cityscapes (the papers' exact settings)
and the built-in synthetic pair (tiny models, CPU minutes).

Paper settings (AdaptSegNet, Tsai et al., CVPR 2018; ADVENT, Vu et al., CVPR 2019): GTA5 resized to 1280x720, SYNTHIA to 1280x760, Cityscapes
train to 1024x512; batch 1 source + 1 target; SGD 2.5e-4, momentum 0.9, wd 5e-4, heads 10x; Adam 1e-4
(0.9, 0.99) for discriminators; poly decay over a 250000-iteration horizon, training stopped at 120000;
DeepLab-v2 ResNet-101 from the local ImageNet init file; evaluation on Cityscapes val resized to 1024x512 and
upsampled to the 2048x1024 ground truth; SYNTHIA reported on 16 classes (13 alongside).
"""

from __future__ import annotations

from .schema import (
    DataConfig,
    DatasetConfig,
    EvalConfig,
    ExperimentConfig,
    ModelConfig,
    OptimConfig,
    OptimizerConfig,
    TrainerConfig,
)

#: Where the paper configs expect the DeepLab-v2 ImageNet init file (ADVENT's DeepLab_resnet_pretrained_imagenet.pth).
DEEPLAB_INIT = "weights/DeepLab_resnet_pretrained_imagenet.pth"


def paper_setup(source: str) -> ExperimentConfig:
    """``gta5`` or ``synthia`` → Cityscapes with the papers' settings; data roots under ``data/``."""
    size, root = {"gta5": ("1280x720", "data/GTA5"), "synthia": ("1280x760", "data/SYNTHIA")}[source]
    return ExperimentConfig(
        description=f"{source.upper()} -> Cityscapes, DeepLab-v2 ResNet-101 (paper settings)",
        data=DataConfig(
            source=DatasetConfig(name=source, root=root, split="train", size=size),
            target=DatasetConfig(name="cityscapes", root="data/cityscapes", split="train", size="1024x512"),
            val=DatasetConfig(name="cityscapes", root="data/cityscapes", split="val", size=None),
            batch_size=1,
            num_workers=4,
        ),
        model=ModelConfig(name="deeplabv2", num_classes=19, pretrained=DEEPLAB_INIT),
        optim=OptimConfig(),  # defaults are the papers' (SGD 2.5e-4 + poly 250k; Adam 1e-4 (0.9, 0.99))
        trainer=TrainerConfig(max_iters=120000, checkpoint_every=5000, eval_every=10000, log_every=50, keep_last=3),
        eval=EvalConfig(mode="resize", size="1024x512", protocol="16" if source == "synthia" else "19"),
    )


def synthetic_setup() -> ExperimentConfig:
    """The built-in synthetic pair (128x64), ``deeplabv2_tiny``, CPU-sized schedule (same seg budget for every recipe)."""
    return ExperimentConfig(
        description="built-in synthetic source -> target pair, tiny DeepLab-v2 on a CPU",
        data=DataConfig(
            source=DatasetConfig(name="synthetic", size="128x64", options={"domain": "source", "num": 400}),
            target=DatasetConfig(name="synthetic", size="128x64", options={"domain": "target", "num": 400}),
            val=DatasetConfig(name="synthetic", split="val", size="128x64", options={"domain": "target", "num": 100}),
            batch_size=4,
        ),
        model=ModelConfig(name="deeplabv2_tiny", num_classes=19, pretrained=None),
        optim=OptimConfig(
            generator=OptimizerConfig(name="sgd", lr=2.5e-3, momentum=0.9, weight_decay=5e-4, head_lr_mult=10.0,
                                      total_iters=None),
            discriminator=OptimizerConfig(name="adam", lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0,
                                          head_lr_mult=1.0, total_iters=None),
        ),
        trainer=TrainerConfig(max_iters=400, checkpoint_every=200, eval_every=0, log_every=20, keep_last=2),
        eval=EvalConfig(mode="resize", size="128x64", protocol="19"),
    )


SETUPS = {"gta5_cityscapes": lambda: paper_setup("gta5"), "synthia_cityscapes": lambda: paper_setup("synthia"),
          "synthetic": synthetic_setup}


# --- Cityscapes → ACDC and Cityscapes → Dark Zurich (docs/settings/acdc.md, docs/settings/darkzurich.md) ---------
#: Dark Zurich's target images: the night sequences of its train split, as DAFormer's, HRDA's and MIC's configs
#: (``rgb_anon/train/night``); day and twilight are left out.
DARKZURICH_NIGHT = {"times": ["night"]}

#: ``cityscapes_<target>`` settings: target dataset name, folder under ``data/``, training size (DAFormer's
#: half resolution: ACDC and Dark Zurich are 1920x1080, resized to 960x540), target options.
SETTINGS_TARGETS: dict[str, tuple[str, str, str, dict]] = {
    "acdc": ("acdc", "data/acdc", "960x540", {}),
    "darkzurich": ("darkzurich", "data/dark_zurich", "960x540", DARKZURICH_NIGHT),
}


def cityscapes_setup(target: str) -> ExperimentConfig:
    """Cityscapes train (labelled) → ACDC or Dark Zurich train (unlabelled), validated on the target's val split.

    The data and evaluation sections of DAFormer's 512x512 settings (Hoyer et al., CVPR 2022; the
    ``uda_cityscapes_to_{acdc,darkzurich}_512x512`` dataset configs of the DAFormer/HRDA/MIC code): Cityscapes
    resized to 1024x512, the target to 960x540, the whole 960x540 validation image evaluated and the logits
    upsampled to the 1920x1080 labels. The model, recipe, optimiser and schedule come from the recipe's preset
    (``uda.config.presets_settings``).

    Example:
        >>> cfg = cityscapes_setup("acdc")
        >>> cfg.data.target.name, cfg.data.target.size, cfg.data.val.split, cfg.eval.size
        ('acdc', '960x540', 'val', '960x540')
    """
    name, root, size, options = SETTINGS_TARGETS[target]
    return ExperimentConfig(
        description=f"Cityscapes -> {'ACDC' if target == 'acdc' else 'Dark Zurich'}",
        data=DataConfig(
            source=DatasetConfig(name="cityscapes", root="data/cityscapes", split="train", size="1024x512"),
            target=DatasetConfig(name=name, root=root, split="train", size=size, options=dict(options)),
            val=DatasetConfig(name=name, root=root, split="val", size=None),
        ),
        eval=EvalConfig(mode="resize", size=size, protocol="19"),
    )


def cityscapes_synthetic_setup(target: str) -> ExperimentConfig:
    """The CPU stand-in of ``cityscapes_<target>``: trees written by ``uda data synth`` (the source in the
    ``cityscapes`` layout, the target in the ``acdc`` / ``darkzurich`` layout with its weather or night shift).

    Roots default to ``data/synthetic/{cityscapes,acdc,dark_zurich}``; sizes are the ``*_synthetic`` preset's
    (``uda.config.presets_settings`` keeps them: the tiny models are tuned to them).

    Example:
        >>> cityscapes_synthetic_setup("darkzurich").data.target.root
        'data/synthetic/dark_zurich'
    """
    name, root, _, options = SETTINGS_TARGETS[target]
    root = "data/synthetic/" + root.removeprefix("data/")
    return ExperimentConfig(
        description=f"synthetic Cityscapes -> {'ACDC' if target == 'acdc' else 'Dark Zurich'} trees (uda data synth)",
        data=DataConfig(
            source=DatasetConfig(name="cityscapes", root="data/synthetic/cityscapes", split="train", size="128x64"),
            target=DatasetConfig(name=name, root=root, split="train", size="128x64", options=dict(options)),
            val=DatasetConfig(name=name, root=root, split="val", size="128x64"),
        ),
        eval=EvalConfig(mode="resize", size="128x64", protocol="19"),
    )


#: The settings of issue 25 (kept apart from `SETUPS`, whose every recipe × setup is registered by `presets`).
SETTINGS_SETUPS = {
    "cityscapes_acdc": lambda: cityscapes_setup("acdc"),
    "cityscapes_darkzurich": lambda: cityscapes_setup("darkzurich"),
    "acdc_synthetic": lambda: cityscapes_synthetic_setup("acdc"),
    "darkzurich_synthetic": lambda: cityscapes_synthetic_setup("darkzurich"),
}
