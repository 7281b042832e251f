"""Common base of the dataset readers: root resolution, split lists, transforms."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import torch.utils.data

from .errors import MissingDatasetError
from .sample import Sample

#: The command that fetches each real dataset (named in every missing-root error).
DATA_SCRIPTS = {
    "voc": "python -m data_scripts.voc --root {root}",
    "sbd": "python -m data_scripts.sbd --root {root}",
    "cityscapes": "python -m data_scripts.cityscapes --root {root}",
    "context": "python -m data_scripts.context --root {root}",
    "coco": "python -m data_scripts.coco --root {root}",
    "boxes": "python -m data_scripts.voc --year 2007 --root {root}",
}


def resolve_root(name: str, root: str | Path, candidates: Sequence[str], marker: str) -> Path:
    """The dataset folder below ``root`` that contains ``marker`` (the archive layouts nest it)."""
    root = Path(root).expanduser()
    for c in candidates:
        p = root / c if c else root
        if (p / marker).exists():
            return p
    from ..paths import data_source

    tried = ", ".join(str((root / c) / marker if c else root / marker) for c in candidates)
    # root=None means the twin only while INSTSEG_DATASETS does not select the real datasets
    twin = "pass root=None" if data_source() == "twin" else "unset INSTSEG_DATASETS and pass root=None"
    raise MissingDatasetError(
        f"{name}: no dataset found under {root} (looked for {tried}). Download and arrange it with "
        f"`{DATA_SCRIPTS[name].format(root=root)}`, or {twin} to use the synthetic twin."
    )


class SegDataset(torch.utils.data.Dataset):
    """A list of image ids and a ``load(i) -> Sample``; ``transform`` maps Sample -> anything."""

    name = ""
    num_classes = 0
    class_names: tuple[str, ...] = ()

    def __init__(self, root: str | Path, split: str, transform: Callable[[Sample], object] | None = None):
        self.split = split
        self.transform = transform
        self.ids: list[str] = []

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int):
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"{self.name} {self.split}: index {i} out of range (len {len(self)})")
        s = self.load(i)
        return self.transform(s) if self.transform is not None else s

    def load(self, i: int) -> Sample:  # pragma: no cover - abstract
        raise NotImplementedError

    def image_file(self, i: int) -> Path:
        """Path of image ``i`` (readers override it; used by exporters)."""
        return Path(getattr(self, "root", ".")) / "JPEGImages" / f"{self.ids[i]}.jpg"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(split={self.split!r}, n={len(self)}, root={str(getattr(self, 'root', ''))!r})"
