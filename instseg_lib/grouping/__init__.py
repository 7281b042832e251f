"""Pixels -> instances.

Wu et al. 2016 §2.1: :func:`hough_group` (box voting + NMS + region NMS).
"""

from .hough import Instances, assign_to_kept, hough_group, region_nms, top_n_masks, voted_boxes

__all__ = ["Instances", "assign_to_kept", "hough_group", "region_nms", "top_n_masks", "voted_boxes"]
