"""Figures the notebooks share: label maps in colour, image/truth/prediction grids, and
instance overlays. Plain matplotlib; every function returns its figure."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .data.classes import VOC_PALETTE


def colorize_labels(labels: np.ndarray, palette: np.ndarray = VOC_PALETTE) -> np.ndarray:
    """``(H,W)`` class ids -> ``(H,W,3)`` uint8 in the VOC palette (255 = void is cream)."""
    return palette[np.clip(labels, 0, len(palette) - 1).astype(np.int64)]


def colorize_instances(instances: np.ndarray, seed: int = 0) -> np.ndarray:
    """``(H,W)`` instance ids -> colours; 0 is black. Colours are fixed per id by ``seed``."""
    rng = np.random.default_rng(seed)
    n = int(instances.max()) + 1 if instances.size else 1
    colors = rng.integers(60, 256, size=(max(n, 1), 3), dtype=np.uint8)
    colors[0] = 0
    return colors[instances.astype(np.int64)]


def masks_to_id_map(masks: np.ndarray) -> np.ndarray:
    """``(M,H,W)`` bool masks (sorted by score, best first) -> one id map, best mask on top."""
    out = np.zeros(masks.shape[1:], dtype=np.int32)
    for k in range(len(masks) - 1, -1, -1):
        out[masks[k]] = k + 1
    return out


def draw_boxes(ax, boxes: np.ndarray, color: str = "yellow") -> None:
    """Draw ``(N,4)`` ``x0,y0,x1,y1`` boxes on ``ax``."""
    from matplotlib.patches import Rectangle

    for x0, y0, x1, y1 in np.asarray(boxes).reshape(-1, 4):
        ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, lw=1, ec=color))


def image_grid(rows: Sequence[Sequence[np.ndarray]], titles: Sequence[str], row_labels: Sequence[str] = (),
               size: float = 2.2):
    """A grid of images: one list per row, one title per column."""
    import matplotlib.pyplot as plt

    n_rows, n_cols = len(rows), len(titles)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(size * n_cols * 1.2, size * n_rows), squeeze=False)
    for r, row in enumerate(rows):
        for c, img in enumerate(row):
            ax = axes[r][c]
            ax.imshow(img, interpolation="nearest")
            ax.set_xticks([]), ax.set_yticks([])
            if r == 0:
                ax.set_title(titles[c], fontsize=9)
            if c == 0 and r < len(row_labels):
                ax.set_ylabel(row_labels[r], fontsize=8)
    fig.tight_layout()
    return fig
