"""The papers' reported tables as data, and the directional claims each table supports.

A :class:`PaperTable` is a transcription of one table of one paper in ``../shared/papers``:
its number, caption, the columns that describe a setting (``key_columns``), the numeric
columns (``value_columns``) with their units, and its rows. A :class:`Claim` states one
direction the paper draws from the table ("101 layers beat 50") in a form that can be
checked on any set of numbers: on the paper's own (a test checks every claim holds there,
which guards the transcription) and on ours (the notebooks print the verdict).

Rows that are other methods' results (``Row.ours=False``) are shown as the paper's only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Mapping, Sequence

Number = float | int | None
ClaimKind = Literal["greater", "best", "close"]
Verdict = Literal["reproduced", "not reproduced", "not run"]


@dataclass(frozen=True)
class Row:
    """One row: a unique ``id``, the printed ``cells`` (column -> value), and whether we
    reproduce it (``ours=False`` for other methods' or test-server rows)."""

    id: str
    cells: Mapping[str, Any]
    ours: bool = True
    group: str = ""


@dataclass(frozen=True)
class Claim:
    """A directional statement checkable on numbers.

    - ``greater``: mean of ``column`` over ``rows_a`` exceeds the mean over ``rows_b`` by
      more than ``margin`` (``margin`` may be negative for "not much worse").
    - ``best``: ``rows_a[0]`` has the highest ``column`` among ``rows_a + rows_b``.
    - ``close``: the means over ``rows_a`` and ``rows_b`` differ by at most ``margin``.

    ``lower_is_better`` flips ``greater`` and ``best`` for error-like columns.
    """

    id: str
    text: str
    kind: ClaimKind
    column: str
    rows_a: tuple[str, ...]
    rows_b: tuple[str, ...] = ()
    margin: float = 0.0
    lower_is_better: bool = False
    source: str = ""  # where the paper states it, e.g. "§3.1, p. 6"


@dataclass(frozen=True)
class PaperTable:
    paper: str
    number: int
    caption: str
    dataset: str
    split: str
    key_columns: tuple[str, ...]
    value_columns: tuple[str, ...]
    units: Mapping[str, str]
    rows: tuple[Row, ...]
    claims: tuple[Claim, ...] = ()
    note: str = ""
    metric: str = ""  # e.g. "mean IoU", "AP^r"
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.paper}.table{self.number}"

    def row(self, row_id: str) -> Row:
        for r in self.rows:
            if r.id == row_id:
                return r
        raise KeyError(f"{self.key} has no row {row_id!r}; rows: {[r.id for r in self.rows]}")

    def paper_values(self) -> dict[str, dict[str, Number]]:
        """``{row_id: {column: value}}`` for the numeric columns, as printed in the paper."""
        return {r.id: {c: r.cells.get(c) for c in self.value_columns} for r in self.rows}

    def validate(self) -> None:
        """Raise ``ValueError`` on an inconsistent transcription."""
        ids = [r.id for r in self.rows]
        if len(ids) != len(set(ids)):
            raise ValueError(f"{self.key}: duplicate row ids")
        cols = set(self.key_columns) | set(self.value_columns)
        for r in self.rows:
            unknown = set(r.cells) - cols
            if unknown:
                raise ValueError(f"{self.key} row {r.id}: unknown columns {sorted(unknown)}")
            for c in self.value_columns:
                v = r.cells.get(c)
                if v is not None and not isinstance(v, (int, float)):
                    raise ValueError(f"{self.key} row {r.id} column {c}: {v!r} is not a number")
        for cl in self.claims:
            if cl.column not in self.value_columns:
                raise ValueError(f"{self.key} claim {cl.id}: unknown column {cl.column!r}")
            for rid in cl.rows_a + cl.rows_b:
                self.row(rid)


def _mean(values: Mapping[str, Mapping[str, Number]], rows: Sequence[str], column: str) -> float | None:
    xs = []
    for rid in rows:
        v = values.get(rid, {}).get(column)
        if v is None:
            return None
        xs.append(float(v))
    return sum(xs) / len(xs) if xs else None


@dataclass(frozen=True)
class ClaimResult:
    claim: Claim
    verdict: Verdict
    a: float | None
    b: float | None
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.claim.id, "text": self.claim.text, "verdict": self.verdict,
            "a": self.a, "b": self.b, "detail": self.detail,
        }


def check_claim(claim: Claim, values: Mapping[str, Mapping[str, Number]]) -> ClaimResult:
    """Evaluate ``claim`` on ``values`` (``{row_id: {column: value}}``).

    Missing numbers give the verdict ``not run``; nothing is guessed.
    """
    sign = -1.0 if claim.lower_is_better else 1.0
    if claim.kind == "best":
        candidates = list(claim.rows_a) + list(claim.rows_b)
        scores = {rid: _mean(values, [rid], claim.column) for rid in candidates}
        if any(v is None for v in scores.values()):
            return ClaimResult(claim, "not run", None, None, "some rows have no number yet")
        winner = max(candidates, key=lambda rid: sign * scores[rid])  # type: ignore[operator]
        a = scores[claim.rows_a[0]]
        others = [scores[r] for r in candidates if r != claim.rows_a[0]]
        b = max(others, key=lambda v: sign * v) if others else None  # type: ignore[operator]
        ok = winner == claim.rows_a[0]
        return ClaimResult(claim, "reproduced" if ok else "not reproduced", a, b,
                           f"best is {winner} ({scores[winner]:.4g})")
    a = _mean(values, claim.rows_a, claim.column)
    b = _mean(values, claim.rows_b, claim.column)
    if a is None or b is None:
        return ClaimResult(claim, "not run", a, b, "some rows have no number yet")
    if claim.kind == "greater":
        ok = sign * (a - b) > claim.margin
        detail = f"{a:.4g} vs {b:.4g} (difference {a - b:+.4g}, needs {'<' if sign < 0 else '>'} {sign * claim.margin:+.4g})"
    elif claim.kind == "close":
        ok = abs(a - b) <= claim.margin
        detail = f"{a:.4g} vs {b:.4g} (|difference| {abs(a - b):.4g}, needs <= {claim.margin:.4g})"
    else:  # pragma: no cover - guarded by the Literal type and validate()
        raise ValueError(f"unknown claim kind {claim.kind!r}")
    return ClaimResult(claim, "reproduced" if ok else "not reproduced", a, b, detail)


def check_claims(table: PaperTable, ours: Mapping[str, Mapping[str, Number]] | None) -> list[ClaimResult]:
    """Verdicts of every claim of ``table`` on our numbers (``None``: nothing run yet)."""
    return [check_claim(c, ours or {}) for c in table.claims]
