"""Evaluation, prediction and reports: the Cityscapes protocols of AdaptSegNet/ADVENT and the MLFA paper
(19 classes; 16 and 13 for SYNTHIA), inference modes, label-free selection scores, paper tables and plots.

Example:
    >>> from uda.evaluation import ConfusionMatrix
    >>> ConfusionMatrix(19).num_classes
    19
"""

from .evaluator import (
    FINAL_CHECKPOINT,
    SELECTED_ON_TARGET_LABELS,
    EvalOptions,
    LabelFreeScores,
    evaluate,
    evaluate_predictions,
    prediction_stem,
)
from .inference import infer, sliding_windows
from .metrics import ConfusionMatrix, class_names, miou_of, resolve_protocol
from .prediction import collect_images, predict
from .published import PUBLISHED
from .report import format_table, write_report

__all__ = [
    "FINAL_CHECKPOINT",
    "PUBLISHED",
    "SELECTED_ON_TARGET_LABELS",
    "ConfusionMatrix",
    "EvalOptions",
    "LabelFreeScores",
    "class_names",
    "collect_images",
    "evaluate",
    "evaluate_predictions",
    "format_table",
    "infer",
    "miou_of",
    "predict",
    "prediction_stem",
    "resolve_protocol",
    "sliding_windows",
    "write_report",
]
