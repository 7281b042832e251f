"""Region proposals that give segments (BoxSup, Dai et al. 2015 §4.1-4.2), with measured quality.

==========================  ================================================================
module                      what
==========================  ================================================================
``candidates``              :class:`Candidates`: ranked segments as unions of base cells
``selective_search``        Selective Search (Uijlings et al. 2013) on Felzenszwalb regions;
                            OpenCV's implementation as the box-recall reference
``superpixel_merging``      multi-scale SLIC + RAG merging: a *stand-in* for MCG / GOP
``quality``                 ABO / MABO / recall@0.5, 0.7 against the number of proposals
``cache``                   per-image ``.npz`` cache with atomic writes
==========================  ================================================================
"""

from .cache import METHODS, cache_path, cached_proposals, compute_proposals, image_hash
from .candidates import Candidates, overlay, relabel_sequential
from .quality import (
    DEFAULT_KS,
    THRESHOLDS,
    QualityEvaluator,
    QualityResult,
    best_overlap_at,
    box_best_overlap,
    box_iou_matrix,
    mask_best_overlap,
    mask_iou_matrix,
)
from .selective_search import SelectiveSearchConfig, opencv_selective_search_boxes, selective_search
from .superpixel_merging import SlicMergeConfig, slic_merge_proposals

__all__ = [
    "METHODS", "cache_path", "cached_proposals", "compute_proposals", "image_hash",
    "Candidates", "overlay", "relabel_sequential",
    "DEFAULT_KS", "THRESHOLDS", "QualityEvaluator", "QualityResult", "best_overlap_at", "box_best_overlap",
    "box_iou_matrix", "mask_best_overlap", "mask_iou_matrix",
    "SelectiveSearchConfig", "opencv_selective_search_boxes", "selective_search",
    "SlicMergeConfig", "slic_merge_proposals",
]
