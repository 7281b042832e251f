"""Pixels -> instances.

Wu et al. 2016 §2.1: :func:`hough_group` (box voting + NMS + region NMS).
Fathi et al. 2017 §3.3-3.4: :func:`seed_group` (seediness, diverse seed sampling, mask growing)
and :func:`seediness_targets` (training targets of the seediness head).
Liang et al. 2015 (PFN) §3.3: :func:`pfn_group` (category-map refinement + per-category
normalised spectral clustering of the predicted instance locations).
Arnab & Torr 2017 §3.2-3.3: :class:`InstanceUnaries` (Box/Global/Shape unaries of Eq. 2-6
over the labels {0..D}), :class:`ShapeTemplates`, :func:`dynamic_instance_crf`.
"""

from .instance_crf import (
    InstanceCRFOutput,
    InstanceUnaries,
    ShapeTemplates,
    background_from_stuff,
    box_masks,
    dynamic_instance_crf,
    instance_masks,
    instance_scores,
    instances_from_labels,
    label_classes,
    transform_scores,
)
from .hough import Instances, assign_to_kept, hough_group, region_nms, top_n_masks, voted_boxes
from .seeds import (
    Seediness,
    SeedSelection,
    SeedTargets,
    candidate_grid,
    first_n,
    grow_masks,
    instances_from_seeds,
    sample_seeds,
    seed_group,
    seediness_from_probs,
    seediness_targets,
    select_seeds,
)
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
    "Instances", "assign_to_kept", "hough_group", "region_nms", "top_n_masks", "voted_boxes",
    "SeedSelection", "SeedTargets", "Seediness", "candidate_grid", "first_n", "grow_masks",
    "instances_from_seeds", "sample_seeds", "seed_group", "seediness_from_probs", "seediness_targets",
    "select_seeds",
    "absolute_locations", "cluster_mask", "instance_count", "pfn_affinity", "pfn_group",
    "refine_category_map", "spectral_cluster", "within_cluster_similarity",
    "InstanceCRFOutput", "InstanceUnaries", "ShapeTemplates", "background_from_stuff", "box_masks",
    "dynamic_instance_crf",
    "instance_masks", "instance_scores", "instances_from_labels", "label_classes", "transform_scores",
]
