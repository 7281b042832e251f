"""BoxSup (Dai, He & Sun 2015): box supervision through region proposals, §4.1-4.3.

==================  =====================================================================
module              what
==================  =====================================================================
``objective``       E_o (Eq. 2), E_r (Eq. 3) from per-superpixel log-probability sums
                    (also from a downsampled score grid), lambda = 3 (Eq. 4); the readings
                    of N and of E_r's normalisation
``assignment``      the label update of §4.3: one candidate per box, "ours" (sample among
                    the k = 5 cheapest) and "w/o sampling" (argmin); first update E_o
                    alone; :class:`BoxImage` keeps what the rounds share;
                    semi-supervision (:func:`supervision_target`)
``labels``          label-map rules (smaller segment on top, shared candidates, crowd
                    void) and box checks
``baselines``       Table 2's rectangles and GrabCut (with counted fallbacks)
==================  =====================================================================

Candidates come from :mod:`instseg_lib.proposals`; Fig. 4's boundary / interior error
analysis is :class:`instseg_lib.metrics.TrimapEvaluator` (void excluded), run on the book's
networks by :func:`instseg_lib.recipes.dai2015.trimap_results`. The network and the training loop are the book's own (DeepLab-LargeFOV VGG-16,
``models/vgg.py``; ``train.py``); the recipe alternates one epoch of training with one
:func:`boxsup_labels` pass over the box-only images.
"""

from .assignment import K_SAMPLE, Assignment, BoxImage, boxsup_labels, select_candidates, supervision_target
from .baselines import FALLBACK_REASONS, GrabCutResult, grabcut_labels, grabcut_mask, rectangle_labels
from .labels import BACKGROUND, VOID, LabelMapReport, box_masks, check_boxes, paint, paint_cells, resolve_shared
from .objective import (
    LAMBDA,
    balance_example,
    dense_regression_cost,
    grid_axis_weights,
    grid_log_prob_sums,
    grid_regression_costs,
    grid_superpixel_weights,
    log_softmax_np,
    overlap_costs,
    overlap_energy,
    regression_costs,
    superpixel_log_prob_sums,
    upsample_grid,
)

__all__ = [
    "K_SAMPLE", "Assignment", "BoxImage", "boxsup_labels", "select_candidates", "supervision_target",
    "FALLBACK_REASONS", "GrabCutResult", "grabcut_labels", "grabcut_mask", "rectangle_labels",
    "BACKGROUND", "VOID", "LabelMapReport", "box_masks", "check_boxes", "paint", "paint_cells", "resolve_shared",
    "LAMBDA", "balance_example", "dense_regression_cost", "grid_axis_weights", "grid_log_prob_sums",
    "grid_regression_costs", "grid_superpixel_weights", "log_softmax_np", "overlap_costs", "overlap_energy",
    "regression_costs", "superpixel_log_prob_sums", "upsample_grid",
]
