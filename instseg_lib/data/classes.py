"""Class tables of the five datasets: names, label ids, colour palettes.

Everything here is transcribed from the datasets' own devkits: the VOC colour map
(``VOCdevkit/VOCcode/VOClabelcolormap.m``), the Cityscapes label table
(``cityscapesscripts/helpers/labels.py``), the 59 most frequent PASCAL-Context classes
(``59_labels.txt`` of the Context release, in the order used by the BoxSup/DeepLab line of
work) and the COCO ids of the 20 VOC categories.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: VOC 2012 / SBD: background plus 20 object classes (label ids 0..20, 255 = void).
VOC_CLASSES: tuple[str, ...] = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
    "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
    "sheep", "sofa", "train", "tvmonitor",
)
VOID = 255


def voc_colormap(n: int = 256) -> np.ndarray:
    """The VOC palette (``VOClabelcolormap.m``): ``(n, 3)`` uint8, entry 255 is (224, 224, 192)."""

    def bit(v: int, i: int) -> int:
        return (v >> i) & 1

    cmap = np.zeros((n, 3), dtype=np.uint8)
    for k in range(n):
        r = g = b = 0
        c = k
        for j in range(8):
            r |= bit(c, 0) << (7 - j)
            g |= bit(c, 1) << (7 - j)
            b |= bit(c, 2) << (7 - j)
            c >>= 3
        cmap[k] = (r, g, b)
    return cmap


VOC_PALETTE: np.ndarray = voc_colormap()

#: PASCAL-Context, 59 most frequent classes; label 0 is "background" (every other class).
CONTEXT_CLASSES: tuple[str, ...] = (
    "background", "aeroplane", "bag", "bed", "bedclothes", "bench", "bicycle", "bird", "boat",
    "book", "bottle", "building", "bus", "cabinet", "car", "cat", "ceiling", "chair", "cloth",
    "computer", "cow", "cup", "curtain", "dog", "door", "fence", "floor", "flower", "food",
    "grass", "ground", "horse", "keyboard", "light", "motorbike", "mountain", "mouse", "person",
    "plate", "platform", "pottedplant", "road", "rock", "sheep", "shelves", "sidewalk", "sign",
    "sky", "snow", "sofa", "table", "track", "train", "tree", "truck", "tvmonitor", "wall",
    "water", "window", "wood",
)
assert len(CONTEXT_CLASSES) == 60

#: Context names of the VOC object classes (diningtable is ``table`` in Context).
VOC_TO_CONTEXT: dict[str, str] = {n: ("table" if n == "diningtable" else n) for n in VOC_CLASSES[1:]}


@dataclass(frozen=True)
class CityscapesLabel:
    name: str
    id: int
    train_id: int
    category: str
    has_instances: bool
    color: tuple[int, int, int]


#: ``cityscapesscripts/helpers/labels.py`` (license plate, id -1, omitted).
CITYSCAPES_LABELS: tuple[CityscapesLabel, ...] = (
    CityscapesLabel("unlabeled", 0, 255, "void", False, (0, 0, 0)),
    CityscapesLabel("ego vehicle", 1, 255, "void", False, (0, 0, 0)),
    CityscapesLabel("rectification border", 2, 255, "void", False, (0, 0, 0)),
    CityscapesLabel("out of roi", 3, 255, "void", False, (0, 0, 0)),
    CityscapesLabel("static", 4, 255, "void", False, (0, 0, 0)),
    CityscapesLabel("dynamic", 5, 255, "void", False, (111, 74, 0)),
    CityscapesLabel("ground", 6, 255, "void", False, (81, 0, 81)),
    CityscapesLabel("road", 7, 0, "flat", False, (128, 64, 128)),
    CityscapesLabel("sidewalk", 8, 1, "flat", False, (244, 35, 232)),
    CityscapesLabel("parking", 9, 255, "flat", False, (250, 170, 160)),
    CityscapesLabel("rail track", 10, 255, "flat", False, (230, 150, 140)),
    CityscapesLabel("building", 11, 2, "construction", False, (70, 70, 70)),
    CityscapesLabel("wall", 12, 3, "construction", False, (102, 102, 156)),
    CityscapesLabel("fence", 13, 4, "construction", False, (190, 153, 153)),
    CityscapesLabel("guard rail", 14, 255, "construction", False, (180, 165, 180)),
    CityscapesLabel("bridge", 15, 255, "construction", False, (150, 100, 100)),
    CityscapesLabel("tunnel", 16, 255, "construction", False, (150, 120, 90)),
    CityscapesLabel("pole", 17, 5, "object", False, (153, 153, 153)),
    CityscapesLabel("polegroup", 18, 255, "object", False, (153, 153, 153)),
    CityscapesLabel("traffic light", 19, 6, "object", False, (250, 170, 30)),
    CityscapesLabel("traffic sign", 20, 7, "object", False, (220, 220, 0)),
    CityscapesLabel("vegetation", 21, 8, "nature", False, (107, 142, 35)),
    CityscapesLabel("terrain", 22, 9, "nature", False, (152, 251, 152)),
    CityscapesLabel("sky", 23, 10, "sky", False, (70, 130, 180)),
    CityscapesLabel("person", 24, 11, "human", True, (220, 20, 60)),
    CityscapesLabel("rider", 25, 12, "human", True, (255, 0, 0)),
    CityscapesLabel("car", 26, 13, "vehicle", True, (0, 0, 142)),
    CityscapesLabel("truck", 27, 14, "vehicle", True, (0, 0, 70)),
    CityscapesLabel("bus", 28, 15, "vehicle", True, (0, 60, 100)),
    CityscapesLabel("caravan", 29, 255, "vehicle", True, (0, 0, 90)),
    CityscapesLabel("trailer", 30, 255, "vehicle", True, (0, 0, 110)),
    CityscapesLabel("train", 31, 16, "vehicle", True, (0, 80, 100)),
    CityscapesLabel("motorcycle", 32, 17, "vehicle", True, (0, 0, 230)),
    CityscapesLabel("bicycle", 33, 18, "vehicle", True, (119, 11, 32)),
)
CS_ID: dict[str, int] = {lab.name: lab.id for lab in CITYSCAPES_LABELS}
#: The 19 evaluation classes, indexed by train id.
CITYSCAPES_CLASSES: tuple[str, ...] = tuple(
    lab.name for lab in sorted(CITYSCAPES_LABELS, key=lambda l: l.train_id) if lab.train_id != 255
)
#: The 8 instance classes evaluated by the Cityscapes instance benchmark.
CITYSCAPES_THING_CLASSES: tuple[str, ...] = (
    "person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle",
)


def cityscapes_id_to_train_id() -> np.ndarray:
    """Lookup table ``(256,)`` uint8 mapping labelIds to trainIds (255 = ignored)."""
    lut = np.full(256, VOID, dtype=np.uint8)
    for lab in CITYSCAPES_LABELS:
        lut[lab.id] = lab.train_id
    return lut


def cityscapes_train_id_to_id() -> dict[int, int]:
    """The inverse of :func:`cityscapes_id_to_train_id` on the 19 evaluated classes: trainId ->
    labelId (the ids the Cityscapes benchmark scripts score)."""
    return {lab.train_id: lab.id for lab in CITYSCAPES_LABELS if lab.train_id != VOID}


def cityscapes_color_lut() -> np.ndarray:
    lut = np.zeros((256, 3), dtype=np.uint8)
    for lab in CITYSCAPES_LABELS:
        lut[lab.id] = lab.color
    return lut


#: COCO 2017 category ids of the 20 VOC classes (BoxSup §4 uses exactly these).
COCO_VOC_IDS: dict[int, str] = {
    5: "aeroplane", 2: "bicycle", 16: "bird", 9: "boat", 44: "bottle", 6: "bus", 3: "car",
    17: "cat", 62: "chair", 21: "cow", 67: "diningtable", 18: "dog", 19: "horse",
    4: "motorbike", 1: "person", 64: "pottedplant", 20: "sheep", 63: "sofa", 7: "train",
    72: "tvmonitor",
}

#: The 80 COCO 2017 categories (id, name, supercategory), as in ``instances_*2017.json``.
COCO_CATEGORIES: tuple[tuple[int, str, str], ...] = (
    (1, "person", "person"), (2, "bicycle", "vehicle"), (3, "car", "vehicle"),
    (4, "motorcycle", "vehicle"), (5, "airplane", "vehicle"), (6, "bus", "vehicle"),
    (7, "train", "vehicle"), (8, "truck", "vehicle"), (9, "boat", "vehicle"),
    (10, "traffic light", "outdoor"), (11, "fire hydrant", "outdoor"), (13, "stop sign", "outdoor"),
    (14, "parking meter", "outdoor"), (15, "bench", "outdoor"), (16, "bird", "animal"),
    (17, "cat", "animal"), (18, "dog", "animal"), (19, "horse", "animal"), (20, "sheep", "animal"),
    (21, "cow", "animal"), (22, "elephant", "animal"), (23, "bear", "animal"),
    (24, "zebra", "animal"), (25, "giraffe", "animal"), (27, "backpack", "accessory"),
    (28, "umbrella", "accessory"), (31, "handbag", "accessory"), (32, "tie", "accessory"),
    (33, "suitcase", "accessory"), (34, "frisbee", "sports"), (35, "skis", "sports"),
    (36, "snowboard", "sports"), (37, "sports ball", "sports"), (38, "kite", "sports"),
    (39, "baseball bat", "sports"), (40, "baseball glove", "sports"), (41, "skateboard", "sports"),
    (42, "surfboard", "sports"), (43, "tennis racket", "sports"), (44, "bottle", "kitchen"),
    (46, "wine glass", "kitchen"), (47, "cup", "kitchen"), (48, "fork", "kitchen"),
    (49, "knife", "kitchen"), (50, "spoon", "kitchen"), (51, "bowl", "kitchen"),
    (52, "banana", "food"), (53, "apple", "food"), (54, "sandwich", "food"),
    (55, "orange", "food"), (56, "broccoli", "food"), (57, "carrot", "food"),
    (58, "hot dog", "food"), (59, "pizza", "food"), (60, "donut", "food"), (61, "cake", "food"),
    (62, "chair", "furniture"), (63, "couch", "furniture"), (64, "potted plant", "furniture"),
    (65, "bed", "furniture"), (67, "dining table", "furniture"), (70, "toilet", "furniture"),
    (72, "tv", "electronic"), (73, "laptop", "electronic"), (74, "mouse", "electronic"),
    (75, "remote", "electronic"), (76, "keyboard", "electronic"), (77, "cell phone", "electronic"),
    (78, "microwave", "appliance"), (79, "oven", "appliance"), (80, "toaster", "appliance"),
    (81, "sink", "appliance"), (82, "refrigerator", "appliance"), (84, "book", "indoor"),
    (85, "clock", "indoor"), (86, "vase", "indoor"), (87, "scissors", "indoor"),
    (88, "teddy bear", "indoor"), (89, "hair drier", "indoor"), (90, "toothbrush", "indoor"),
)
assert len(COCO_CATEGORIES) == 80
VOC_TO_COCO_ID: dict[str, int] = {v: k for k, v in COCO_VOC_IDS.items()}
