"""``open_dataset``: one entry point for the real datasets and the synthetic twin."""

from __future__ import annotations

import hashlib

import os
from pathlib import Path

from ..profiles import Profile, get_profile
from .base import SegDataset
from .errors import MissingDatasetError
from .synthetic import is_complete, read_marker, twin_root

NAMES = ("voc", "sbd", "cityscapes", "context", "coco", "boxes")


def _reader_class(name: str) -> type[SegDataset]:
    from .boxes import BoxesDataset
    from .cityscapes import CityscapesDataset
    from .coco import COCODataset
    from .context import ContextDataset
    from .sbd import SBDDataset
    from .voc import VOCDataset

    table = {"voc": VOCDataset, "sbd": SBDDataset, "cityscapes": CityscapesDataset, "context": ContextDataset,
             "coco": COCODataset, "boxes": BoxesDataset}
    if name not in table:
        raise ValueError(f"unknown dataset {name!r}; use one of {', '.join(NAMES)}")
    return table[name]


def open_dataset(name: str, split: str, root: str | Path | None = None, profile: str | Profile | None = None,
                 transform=None, **kwargs) -> SegDataset:
    """A torch ``Dataset`` of :class:`~.sample.Sample` for ``name`` in ``voc, sbd, cityscapes,
    context, coco, boxes``.

    ``root=None`` reads the synthetic twin at ``data_root()/<profile>/<name>`` (profile:
    ``$PROFILE``, else ``cpu``); a missing or incomplete twin raises
    :class:`~.errors.MissingDatasetError` naming the generator command. With a ``root``,
    the real dataset's layout is read there; a missing one names its ``data_scripts`` command.
    """
    cls = _reader_class(name)
    if root is None:
        prof = profile if isinstance(profile, Profile) else get_profile(profile)
        root = twin_root(name, prof)
        if not is_complete(root):
            state = "is incomplete (an interrupted generation?)" if root.exists() else "does not exist"
            raise MissingDatasetError(
                f"the synthetic twin of {name!r} for profile {prof.name!r} at {root} {state}. Generate it with "
                f"`python -m instseg_lib.data.synthetic --preset {name} --profile {prof.name} --out {root}` "
                f"(or every preset: `python -m instseg_lib.data.synthetic --all --profile {prof.name}`, "
                f"which `make data PROFILE={prof.name}` runs)."
            )
    return cls(root, split, transform=transform, **kwargs)


def dataset_fingerprint(root: str | Path) -> str:
    """A short stable hash of a dataset folder, recorded in experiment provenance.

    For a synthetic twin it is the content fingerprint stored in its completion marker
    (sha256 over every file's bytes). For a real dataset (no marker) it hashes the sorted
    list of relative paths and sizes, which is cheap on 100k-file datasets and changes when
    files are added, removed or replaced by ones of another size.
    """
    root = Path(root).expanduser()
    m = read_marker(root)
    if m and "fingerprint" in m:
        return str(m["fingerprint"])
    if not root.is_dir():
        raise MissingDatasetError(f"{root}: no such dataset folder to fingerprint")
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for f in sorted(filenames):
            p = Path(dirpath) / f
            h.update(f"{p.relative_to(root).as_posix()}\t{p.stat().st_size}\n".encode())
    return h.hexdigest()[:16]


