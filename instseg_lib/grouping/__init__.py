"""Pixels -> instances.

Wu et al. 2016 §2.1: :func:`hough_group` (box voting + NMS + region NMS).
Liang et al. 2015 (PFN) §3.3: :func:`pfn_group` (category-map refinement + per-category
normalised spectral clustering of the predicted instance locations).
"""

from .hough import Instances, assign_to_kept, hough_group, region_nms, top_n_masks, voted_boxes
from .spectral import (
    absolute_locations,
    cluster_mask,
    instance_count,
    pfn_affinity,
    pfn_group,
    refine_category_map,
    spectral_cluster,
    within_cluster_similarity,
)

__all__ = [
    "Instances",
    "absolute_locations",
    "assign_to_kept",
    "cluster_mask",
    "hough_group",
    "instance_count",
    "pfn_affinity",
    "pfn_group",
    "refine_category_map",
    "region_nms",
    "spectral_cluster",
    "top_n_masks",
    "voted_boxes",
    "within_cluster_similarity",
]
