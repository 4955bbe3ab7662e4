"""Datasets, the built-in synthetic domain pair, loaders and GPU augmentation.

Registered datasets (kind ``dataset``): ``gta5``, ``synthia``, ``cityscapes``, ``acdc``, ``darkzurich``,
``bdd100k``, ``mapillary``, ``folder``, ``synthetic``; every one takes ``class_map=PATH`` (a custom class map);
augmentations (kind ``augmentation``): ``standard``, ``none``.

Example:
    >>> import uda
    >>> ds = uda.create("dataset", "synthetic", domain="source", num=2, size="64x32")
    >>> sorted(ds[0])
    ['image', 'index', 'label', 'name']
"""

from ._base import Sample, SegmentationFiles
from ._decode import LabelMap
from ._weather import apply_condition, render_condition
from ._write import write_condition_layout, write_synthetic
from .acdc import ACDCDataset
from .augmentation import NoAugmentation, StandardAugmentation
from .bdd100k import BDD100KDataset
from .check import check_dataset
from .cityscapes import CityscapesDataset
from .class_map import ClassMap, load_class_map
from .darkzurich import DarkZurichDataset
from .folder import FolderDataset, load_label_map
from .gta5 import GTA5Dataset
from .loader import InfiniteLoader, build_dataset
from .mapillary import MapillaryDataset
from .synthetic import SyntheticDataset, render_scene
from .synthia import SynthiaDataset

__all__ = [
    "ACDCDataset",
    "BDD100KDataset",
    "CityscapesDataset",
    "ClassMap",
    "DarkZurichDataset",
    "FolderDataset",
    "GTA5Dataset",
    "InfiniteLoader",
    "LabelMap",
    "MapillaryDataset",
    "NoAugmentation",
    "Sample",
    "SegmentationFiles",
    "StandardAugmentation",
    "SyntheticDataset",
    "SynthiaDataset",
    "apply_condition",
    "build_dataset",
    "check_dataset",
    "load_class_map",
    "load_label_map",
    "render_condition",
    "render_scene",
    "write_condition_layout",
    "write_synthetic",
]
