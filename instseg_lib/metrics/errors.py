"""Errors and warnings raised by the metrics suite.

Every error is a :class:`ValueError` subclass whose message names the image, category or
file at fault, so a user pointing the CLI at their own predictions sees what to fix.
"""

from __future__ import annotations


class MetricsInputError(ValueError):
    """Base class of every bad-input error of :mod:`instseg_lib.metrics`."""


class UnknownImageError(MetricsInputError):
    """A prediction refers to an image id that the ground truth does not contain."""


class UnknownCategoryError(MetricsInputError):
    """A prediction (or ground truth) uses a category id outside the known categories."""


class MaskSizeError(MetricsInputError):
    """A mask's height and width differ from those of its image."""


class MissingScoreError(MetricsInputError):
    """A prediction has no confidence score (or a non-finite one)."""


class PredictionFormatError(MetricsInputError):
    """A prediction file or record is malformed (not a list, missing a field, ...)."""


class EmptyPredictionsWarning(UserWarning):
    """No predictions at all: valid input, every AP is 0."""
