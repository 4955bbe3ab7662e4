"""Datasets, the built-in synthetic domain pair, loaders and GPU augmentation.

Registered datasets (kind ``dataset``): ``gta5``, ``synthia``, ``cityscapes``, ``folder``, ``synthetic``;
augmentations (kind ``augmentation``): ``standard``, ``none``.

Example:
    >>> import uda
    >>> ds = uda.create("dataset", "synthetic", domain="source", num=2, size="64x32")
    >>> sorted(ds[0])
    ['image', 'index', 'label', 'name']
"""

from ._base import Sample, SegmentationFiles
from ._decode import LabelMap
from ._write import write_synthetic
from .augmentation import NoAugmentation, StandardAugmentation
from .check import check_dataset
from .cityscapes import CityscapesDataset
from .folder import FolderDataset, load_label_map
from .gta5 import GTA5Dataset
from .loader import InfiniteLoader, build_dataset
from .synthetic import SyntheticDataset, render_scene
from .synthia import SynthiaDataset

__all__ = [
    "CityscapesDataset",
    "FolderDataset",
    "GTA5Dataset",
    "InfiniteLoader",
    "LabelMap",
    "NoAugmentation",
    "Sample",
    "SegmentationFiles",
    "StandardAugmentation",
    "SyntheticDataset",
    "SynthiaDataset",
    "build_dataset",
    "check_dataset",
    "load_label_map",
    "render_scene",
    "write_synthetic",
]
