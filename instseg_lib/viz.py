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
               size: float = 2.2, caption: str | None = None, class_names: Sequence[str] | None = None):
    """A grid of images: one list per row, one title per column, with a caption, a legend of the
    classes that label-map panels show, and a note on every single-colour panel.

    A column whose title starts with "image" is a photo and one whose title names "instance" an
    instance map; the other columns drawn by :func:`colorize_labels` are class maps, named in the
    legend by ``class_names`` (default: the class list of the twin a title names, ``...-voc-...``)."""
    import matplotlib.pyplot as plt

    n_rows, n_cols = len(rows), len(titles)
    # Rows as tall as the images need (wide Cityscapes frames leave no band of white under them).
    shapes = [np.asarray(img).shape for row in rows for img in row if np.asarray(img).ndim >= 2]
    aspect = max((h / w for h, w, *_ in shapes if w), default=1.0)
    row_h = size * min(1.0, aspect + 0.2)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(size * n_cols * 1.2, row_h * n_rows), squeeze=False)
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
    annotate_grid(fig, axes, rows, titles, caption, class_names)
    return fig


# --------------------------------------------------------------------------- captions and legends
#: Class lists by the twin named in a figure's titles (config names carry ``-<dataset>-``).
def _class_lists() -> dict[str, tuple[str, ...]]:
    from .data.classes import CITYSCAPES_CLASSES, CONTEXT_CLASSES, VOC_CLASSES

    return {"voc": VOC_CLASSES, "sbd": VOC_CLASSES, "context": CONTEXT_CLASSES, "cityscapes": CITYSCAPES_CLASSES}


def guess_class_names(texts: Sequence[str]) -> tuple[str, ...] | None:
    """The class list of the twin named in ``texts`` (e.g. a title ``fcrn101-voc-os8-...``)."""
    lists = _class_lists()
    for t in texts:
        for token in str(t).replace("_", "-").split("-"):
            if token in lists:
                return lists[token]
    return None


_PALETTE_INDEX = {tuple(int(v) for v in c): i for i, c in enumerate(VOC_PALETTE)}


def palette_classes(img: np.ndarray, max_colours: int = 64) -> list[int] | None:
    """The class ids of an image drawn by :func:`colorize_labels`, or ``None`` when it is not one
    (a photo, an instance map): every colour must be a palette colour."""
    a = np.asarray(img)
    if a.ndim != 3 or a.shape[-1] != 3 or a.dtype != np.uint8:
        return None
    colours = np.unique(a.reshape(-1, 3), axis=0)
    if len(colours) > max_colours:
        return None
    ids = [_PALETTE_INDEX.get(tuple(int(v) for v in c)) for c in colours]
    return None if any(i is None for i in ids) else sorted(ids)  # type: ignore[arg-type]


def _name(k: int, names: Sequence[str] | None) -> str:
    if k == 255:
        return "void"
    return names[k] if names is not None and k < len(names) else f"class {k}"


def uniform_note(img: np.ndarray, names: Sequence[str] | None = None) -> str | None:
    """A sentence for a panel that is a single colour (so that it does not read as a broken figure)."""
    a = np.asarray(img)
    if a.size == 0 or a.ndim < 2:
        return None
    flat = a.reshape(a.shape[0] * a.shape[1], -1)
    if not (flat == flat[0]).all():
        return None
    ids = palette_classes(a) if a.ndim == 3 else None
    if ids is not None and len(ids) == 1 and not (ids[0] == 0 and names is None):
        return f"every pixel: {_name(ids[0], names)}"
    if a.ndim == 3 and (flat[0] == 0).all():
        return "empty: no instance / only background"
    return "a single colour everywhere"


#: The ``gid`` of a figure's caption and of its legend (:func:`add_caption`), by which tests and
#: :func:`figure_caption` find them.
CAPTION_GID = "instseg-caption"
LEGEND_GID = "instseg-legend"


def class_handles(class_ids: Sequence[int], names: Sequence[str] | None, max_items: int = 24,
                  palette: np.ndarray = VOC_PALETTE) -> list:
    """Legend entries for the classes shown, in the colours of :func:`colorize_labels`."""
    from matplotlib.patches import Patch

    return [Patch(facecolor=palette[k] / 255.0, edgecolor="0.4", label=_name(k, names))
            for k in list(class_ids)[:max_items]]


def add_caption(fig, caption: str, handles: Sequence = (), legend_title: str | None = None, ncol: int = 6) -> None:
    """Put ``caption`` under the figure, with a legend of ``handles`` between the axes and it.

    The one captioning mechanism of the book's figures. The figure grows at the bottom by the
    height of the caption (and legend); every axes and figure text keeps its size and place in
    inches, so a layout done before (``tight_layout``) stays as it was. The caption and the legend
    carry the gids :data:`CAPTION_GID` and :data:`LEGEND_GID` (read back by :func:`figure_caption`
    and :func:`figure_legend_labels`).
    """
    import textwrap

    if not caption or not caption.strip():
        raise ValueError("a figure caption must say something")
    w, h = fig.get_size_inches()
    # The page shows a figure about 7 in wide: wider ones are scaled down, so their caption is
    # set larger, to read at the same size as a narrow figure's.
    scale = max(1.0, w / 7.0)
    fs = 8.0 * scale
    lines = textwrap.wrap(caption, width=max(40, int(w * 17 * 7 / fs)))
    handles = list(handles)
    cap_in = fs * 1.4 / 72 * len(lines) + 0.08 * scale
    leg_in = 0.0
    if handles:
        leg_in = scale * (0.2 * (-(-len(handles) // ncol)) + (0.16 if legend_title else 0.0) + 0.1)
    extra = cap_in + leg_in + 0.05
    H = h + extra
    for ax in fig.axes:  # same place in inches: shift up by `extra`, same height
        x0, y0, bw, bh = ax.get_position().bounds
        ax.set_position([x0, (y0 * h + extra) / H, bw, bh * h / H])
    for t in fig.texts:  # suptitle and other figure texts, in figure coordinates
        x, y = t.get_position()
        t.set_position((x, (y * h + extra) / H))
    fig.set_size_inches(w, H)
    if handles:
        leg = fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), ncol), fontsize=7 * scale,
                         frameon=False, bbox_to_anchor=(0.5, (cap_in + 0.02) / H), title=legend_title,
                         title_fontsize=7 * scale)
        leg.set_gid(LEGEND_GID)
    fig.text(0.5, 0.02 / H, "\n".join(lines), ha="center", va="bottom", fontsize=fs, gid=CAPTION_GID)


def figure_caption(fig) -> str | None:
    """The caption :func:`add_caption` wrote under ``fig`` (one line), or ``None``."""
    for t in fig.texts:
        if t.get_gid() == CAPTION_GID:
            return " ".join(t.get_text().split("\n"))
    return None


def figure_legend_labels(fig) -> list[str]:
    """The labels of the legend :func:`add_caption` put under ``fig`` (``[]`` without one)."""
    return [t.get_text() for lg in fig.legends if lg.get_gid() == LEGEND_GID for t in lg.get_texts()]


def annotate_grid(fig, axes, rows: Sequence[Sequence[np.ndarray]], titles: Sequence[str],
                  caption: str | None = None, class_names: Sequence[str] | None = None) -> None:
    """Caption, class legend and single-colour notes for an :func:`image_grid` figure."""
    names = class_names if class_names is not None else guess_class_names(titles)
    shown: set[int] = set()
    for r, row in enumerate(rows):
        for c, img in enumerate(row):
            # Photos ("image ...") and instance maps ("... instances") are not class maps.
            kind = str(titles[c]).lower() if c < len(titles) else ""
            not_classes = kind.startswith("image") or "instance" in kind
            ids = None if not_classes else palette_classes(img)
            # A black-only panel is also an empty instance map: a class only when the twin is known.
            if ids is not None and (names is not None or ids != [0]):
                shown.update(ids)
            note = uniform_note(img, None if not_classes else names)
            if note:
                axes[r][c].text(0.5, 0.5, note, transform=axes[r][c].transAxes, ha="center", va="center",
                                fontsize=7, color="black", wrap=True,
                                bbox={"facecolor": "white", "alpha": 0.85, "edgecolor": "none"})
    if caption is None:
        caption = (f"Each row is one validation image; columns: {', '.join(titles)}. "
                   + ("Label maps use the VOC palette; the legend names the classes shown."
                      if shown else "Instance maps colour each instance at random; black is no instance."))
    add_caption(fig, caption, class_handles(sorted(shown), names) if shown else (),
                legend_title="classes (colours of the label maps)")
