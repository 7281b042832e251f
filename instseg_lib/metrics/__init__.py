"""One evaluation suite for the five papers (see each module for its protocol).

==================  ==============================================================
module              protocol
==================  ==============================================================
``semantic``        pixel acc., mean acc., mIoU (Wu 2016 §3.1); trimap (BoxSup Fig. 4)
``ap``              AP^r, SDS protocol and the MNC/FCIS variant; AP^r_vol
``matching``        Matching IoU (Arnab & Torr 2017 §4.2), segment and VOC-pixel readings
``recall``          class-agnostic recall@k and AR (Fathi et al. 2017 Table 3)
``cityscapes``      Cityscapes instance AP / AP50 (cityscapesScripts semantics)
``coco``            COCO segm AP via pycocotools
``masks``           RLE conversion and vectorised IoU
==================  ==============================================================

Every evaluator streams images (``add(...)`` per image, then ``compute()``) and keeps only
small per-image matrices.
"""

from .ap import (
    PROTOCOLS,
    VOL_THRESHOLDS,
    APTable,
    SDSEvaluator,
    assign_fcis,
    assign_sds,
    voc07_ap,
    voc_ap,
)
from .cityscapes import INSTANCE_CLASSES, CityscapesEvaluator, CityscapesResult
from .coco import COCOEvaluator, coco_segm_eval
from .errors import (
    EmptyPredictionsWarning,
    MaskSizeError,
    MetricsInputError,
    MissingScoreError,
    PredictionFormatError,
    UnknownCategoryError,
    UnknownImageError,
)
from .masks import encode, intersection_matrix, iou_matrix, to_rles
from .matching import (
    MATCHING_MODES,
    MatchingIoUEvaluator,
    MatchingIoUResult,
    match_segments,
    matching_iou,
    matching_iou_voc_counts,
)
from .recall import FATHI_KS, RecallEvaluator, RecallResult
from .semantic import (
    SemanticEvaluator,
    SemanticScores,
    TrimapEvaluator,
    TrimapScores,
    confusion_matrix,
    scores_from_confusion,
)

__all__ = [
    "PROTOCOLS", "VOL_THRESHOLDS", "APTable", "SDSEvaluator", "assign_fcis", "assign_sds",
    "voc07_ap", "voc_ap", "INSTANCE_CLASSES", "CityscapesEvaluator", "CityscapesResult",
    "COCOEvaluator", "coco_segm_eval", "EmptyPredictionsWarning", "MaskSizeError",
    "MetricsInputError", "MissingScoreError", "PredictionFormatError", "UnknownCategoryError",
    "UnknownImageError", "encode", "intersection_matrix", "iou_matrix", "to_rles",
    "MATCHING_MODES", "MatchingIoUEvaluator", "MatchingIoUResult", "match_segments", "matching_iou",
    "matching_iou_voc_counts",
    "FATHI_KS", "RecallEvaluator", "RecallResult", "SemanticEvaluator", "SemanticScores",
    "TrimapEvaluator", "TrimapScores", "confusion_matrix", "scores_from_confusion",
]
