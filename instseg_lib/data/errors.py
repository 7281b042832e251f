"""Exceptions of the data layer. Every message names the file and the fix."""

from __future__ import annotations

from pathlib import Path


class DataError(Exception):
    """Base class of every data-layer error."""


class MissingDatasetError(DataError, FileNotFoundError):
    """A dataset root (real or synthetic) does not exist or lacks its layout."""


class MissingSplitError(DataError, FileNotFoundError):
    """The split file (e.g. ``ImageSets/Segmentation/val.txt``) is absent."""


class MissingFileError(DataError, FileNotFoundError):
    """A file that the dataset's layout or annotation lists (image, label map) does not exist."""


class CorruptFileError(DataError):
    """An image, PNG, ``.mat``, XML or JSON file cannot be decoded."""


class SizeMismatchError(DataError):
    """A label map's size differs from its image."""


class LabelRangeError(DataError):
    """A label map holds values outside the dataset's label set."""


class MissingAnnotationError(DataError, FileNotFoundError):
    """An annotation file of one image is absent where its folder exists (e.g. a VOC
    ``SegmentationObject/<id>.png``), and the caller asked for an error."""


class MissingAnnotationWarning(UserWarning):
    """The warning form of :class:`MissingAnnotationError`: the sample is returned without
    that annotation (``has_instances=False``)."""


class UnknownCategoryWarning(UserWarning):
    """Annotations of a category whose name the reader does not know were dropped."""


class ChecksumError(DataError):
    """A downloaded archive does not have the published checksum."""


def corrupt(path: Path | str, what: str, err: Exception | str) -> CorruptFileError:
    return CorruptFileError(
        f"{path}: cannot decode this {what} ({err}). The file is damaged or truncated: "
        f"delete it and re-extract the dataset (or re-run its data_scripts command / the "
        f"synthetic generator)."
    )
