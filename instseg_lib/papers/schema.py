"""The papers' reported tables as data, and the directional claims each table supports.

A :class:`PaperTable` is a transcription of one table of one paper in ``../shared/papers``:
its number, caption, the columns that describe a setting (``key_columns``), the numeric
columns (``value_columns``) with their units, and its rows. A :class:`Claim` states one
direction the paper draws from the table ("101 layers beat 50") in a form that can be
checked on any set of numbers: on the paper's own (a test checks every claim holds there,
which guards the transcription) and on ours (the notebooks print the verdict).

Rows that are other methods' results (``Row.ours=False``) are shown as the paper's only.

Our numbers come from single training runs, so a difference between two of them is only
evidence when it exceeds the run-to-run noise. A :class:`Noise` (the spread of one config
over seeds, and the score of a trivial predictor) turns a claim decided within that noise,
or between runs that all sit at the trivial predictor's level, into ``inconclusive``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Mapping, Sequence

Number = float | int | None
ClaimKind = Literal["greater", "best", "close", "spread", "increasing", "best_column", "gain_increasing"]
Verdict = Literal["reproduced", "not reproduced", "inconclusive", "not run"]
VERDICTS: tuple[str, ...] = ("reproduced", "not reproduced", "inconclusive", "not run")


@dataclass(frozen=True)
class Row:
    """One row: a unique ``id``, the printed ``cells`` (column -> value), and whether we
    reproduce it (``ours=False`` for other methods' rows, and for test-server rows that no
    held-out split of the twin stands in for)."""

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
    - ``spread``: the values of ``column`` over ``rows_a`` span at most ``margin`` (max - min;
      "the curve is flat").
    - ``increasing``: ``column`` rises along ``rows_a`` in the given order, every step by more
      than ``margin``.
    - ``best_column``: in the mean over ``rows_a``, ``column`` is the highest of ``columns``
      (with ``lower_is_better``, the lowest: "bicycle is the weakest class").
    - ``gain_increasing``: the gains ``rows_a[i] - rows_b[i]`` (paired in order) rise along
      the pairs, every step by more than ``margin`` ("the gain of end-to-end training grows
      as terms are added").

    ``lower_is_better`` flips ``greater``, ``best`` and ``best_column`` for error-like columns.
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
    #: ``best_column`` only: the columns ``column`` is compared with (it included).
    columns: tuple[str, ...] = ()


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
            for c in cl.columns:
                if c not in self.value_columns:
                    raise ValueError(f"{self.key} claim {cl.id}: unknown column {c!r}")
            if cl.kind == "best_column" and cl.column not in cl.columns:
                raise ValueError(f"{self.key} claim {cl.id}: a best_column claim lists its own column in columns")
            if cl.kind in ("spread", "increasing") and len(cl.rows_a) < 2:
                raise ValueError(f"{self.key} claim {cl.id}: a {cl.kind} claim needs at least two rows")
            if cl.kind == "gain_increasing" and (len(cl.rows_a) < 2 or len(cl.rows_a) != len(cl.rows_b)):
                raise ValueError(f"{self.key} claim {cl.id}: a gain_increasing claim pairs rows_a with rows_b "
                                 "(equal lengths, at least two pairs)")
            for rid in cl.rows_a + cl.rows_b:
                self.row(rid)


@dataclass(frozen=True)
class Noise:
    """How large a difference between our numbers must be before it counts as evidence.

    - ``sigma``: column -> standard deviation of *one run* of a reference config over
      seeds. A difference of means over ``n_a`` and ``n_b`` independent runs has standard
      deviation ``sigma * sqrt(1/n_a + 1/n_b)``; it is decisive beyond ``z`` times that
      (recipes pass the Student-t quantile of their seed count, since σ is estimated).
    - ``chance``: column -> the score of a trivial predictor on the same evaluation images
      (e.g. "the most frequent class everywhere"). When every compared run is within the noise band of
      it, the nets learned nothing to compare and the claim is inconclusive.
    - ``source``: a sentence saying where the numbers come from (shown in captions).

    Columns missing from ``sigma`` are treated as noiseless.
    """

    sigma: Mapping[str, float]
    chance: Mapping[str, float] = field(default_factory=dict)
    z: float = 2.0
    source: str = ""

    def band(self, column: str, n_a: int = 1, n_b: int = 1) -> float:
        """``z`` standard deviations of a difference of means over ``n_a`` and ``n_b`` runs."""
        s = float(self.sigma.get(column, 0.0) or 0.0)
        return self.z * s * ((1.0 / max(n_a, 1)) + (1.0 / max(n_b, 1))) ** 0.5

    def at_chance(self, column: str, value: float, lower_is_better: bool = False) -> bool:
        """True when ``value`` is within the noise band of the trivial predictor's score."""
        if column not in self.chance:
            return False
        margin = self.z * float(self.sigma.get(column, 0.0) or 0.0)
        c = float(self.chance[column])
        return value >= c - margin if lower_is_better else value <= c + margin


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


def _all_at_chance(claim: Claim, values: Mapping[str, Mapping[str, Number]], noise: Noise | None) -> bool:
    if noise is None or claim.column not in noise.chance:
        return False
    rows = list(claim.rows_a) + list(claim.rows_b)
    return all(noise.at_chance(claim.column, float(values[r][claim.column]), claim.lower_is_better)  # type: ignore[arg-type]
               for r in rows)


def check_claim(claim: Claim, values: Mapping[str, Mapping[str, Number]], noise: Noise | None = None) -> ClaimResult:
    """Evaluate ``claim`` on ``values`` (``{row_id: {column: value}}``).

    Missing numbers give the verdict ``not run``; nothing is guessed. With ``noise``:

    - every compared run within noise of the trivial predictor: ``inconclusive``;
    - ``greater``: ``inconclusive`` when the difference is within the noise band of the
      claimed margin;
    - ``best``: ``inconclusive`` when the claimed row and the best other row are within
      the noise band of each other;
    - ``close``: ``inconclusive`` when ``|difference|`` is within the noise band of the
      claimed margin, as for ``greater``. A band at least as wide as the margin can then
      never show two settings to be close, but a gap beyond margin + band still shows that
      they are not (a 15-point gap is not "within 2 points" however noisy the runs).
    """
    sign = -1.0 if claim.lower_is_better else 1.0
    if claim.kind in ("spread", "increasing"):
        return _check_sequence(claim, values, noise)
    if claim.kind == "gain_increasing":
        return _check_gains(claim, values, noise)
    if claim.kind == "best_column":
        return _check_best_column(claim, values, noise, sign)
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
        detail = f"best is {winner} ({scores[winner]:.4g})"
        if noise is not None:
            band = noise.band(claim.column)
            gap = sign * (a - b) if b is not None else float("inf")  # type: ignore[operator]
            if _all_at_chance(claim, values, noise):
                return ClaimResult(claim, "inconclusive", a, b, detail + "; every run is at the trivial predictor's level")
            if abs(gap) <= band:
                return ClaimResult(claim, "inconclusive", a, b,
                                   detail + f"; the lead {abs(gap):.3g} is within the noise band {band:.3g}")
        return ClaimResult(claim, "reproduced" if ok else "not reproduced", a, b, detail)
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
    if noise is not None:
        band = noise.band(claim.column, len(claim.rows_a), len(claim.rows_b))
        if _all_at_chance(claim, values, noise):
            return ClaimResult(claim, "inconclusive", a, b, detail + "; every run is at the trivial predictor's level")
        if claim.kind == "greater" and abs(sign * (a - b) - claim.margin) <= band:
            return ClaimResult(claim, "inconclusive", a, b, detail + f"; within the noise band ±{band:.3g}")
        if claim.kind == "close" and abs(abs(a - b) - claim.margin) <= band:
            return ClaimResult(claim, "inconclusive", a, b, detail + _near_margin(band, claim.margin))
    return ClaimResult(claim, "reproduced" if ok else "not reproduced", a, b, detail)


def _near_margin(band: float, margin: float) -> str:
    """Why a closeness claim (``close``, ``spread``) within ``band`` of its ``margin`` is undecided."""
    if band >= margin:
        return f"; the noise band {band:.3g} is wider than the margin"
    return f"; within the noise band ±{band:.3g} of the margin"


def _check_sequence(claim: Claim, values: Mapping[str, Mapping[str, Number]], noise: Noise | None) -> ClaimResult:
    """``spread`` and ``increasing``: claims about the values of one column along rows."""
    xs = [_mean(values, [r], claim.column) for r in claim.rows_a]
    if any(x is None for x in xs):
        return ClaimResult(claim, "not run", None, None, "some rows have no number yet")
    v = [float(x) for x in xs]  # type: ignore[arg-type]
    band = noise.band(claim.column) if noise is not None else 0.0
    at_chance = _all_at_chance(claim, values, noise)
    if claim.kind == "spread":
        lo, hi = min(v), max(v)
        ok = hi - lo <= claim.margin
        detail = f"range {lo:.4g} .. {hi:.4g} (span {hi - lo:.4g}, needs <= {claim.margin:.4g})"
        if noise is not None:
            if at_chance:
                return ClaimResult(claim, "inconclusive", hi, lo, detail + "; every run is at the trivial predictor's level")
            if abs((hi - lo) - claim.margin) <= band:  # as for ``close``: a span beyond margin + band is decided
                return ClaimResult(claim, "inconclusive", hi, lo, detail + _near_margin(band, claim.margin))
        return ClaimResult(claim, "reproduced" if ok else "not reproduced", hi, lo, detail)
    steps = [b - a for a, b in zip(v[:-1], v[1:])]
    worst = min(range(len(steps)), key=lambda i: steps[i])
    detail = (f"smallest step {steps[worst]:+.4g} ({claim.rows_a[worst]} -> {claim.rows_a[worst + 1]}), "
              f"needs every step > {claim.margin:.4g}")
    return _rising(claim, steps, v[-1], v[0], detail, band if noise is not None else None, at_chance)


def _rising(claim: Claim, steps: list[float], a: float, b: float, detail: str, band: float | None,
            at_chance: bool) -> ClaimResult:
    """The verdict that every step rises by more than ``claim.margin`` (``band=None``: no noise)."""
    ok = all(d > claim.margin for d in steps)
    if band is not None:
        if at_chance:
            return ClaimResult(claim, "inconclusive", a, b, detail + "; every run is at the trivial predictor's level")
        if not ok and all(d > claim.margin - band for d in steps):
            return ClaimResult(claim, "inconclusive", a, b, detail + f"; within the noise band ±{band:.3g}")
        if ok and any(d - claim.margin <= band for d in steps):
            return ClaimResult(claim, "inconclusive", a, b, detail + f"; a step is within the noise band ±{band:.3g}")
    return ClaimResult(claim, "reproduced" if ok else "not reproduced", a, b, detail)


def _check_gains(claim: Claim, values: Mapping[str, Mapping[str, Number]], noise: Noise | None) -> ClaimResult:
    """``gain_increasing``: the paired gains ``a_i - b_i`` rise. A step between two gains
    involves four runs, so its noise band is ``z σ √4``."""
    a = [_mean(values, [r], claim.column) for r in claim.rows_a]
    b = [_mean(values, [r], claim.column) for r in claim.rows_b]
    if any(x is None for x in a + b):
        return ClaimResult(claim, "not run", None, None, "some rows have no number yet")
    g = [float(x) - float(y) for x, y in zip(a, b)]  # type: ignore[arg-type]
    steps = [y - x for x, y in zip(g[:-1], g[1:])]
    worst = min(range(len(steps)), key=lambda i: steps[i])
    detail = (f"gains {', '.join(f'{x:+.3g}' for x in g)}; smallest step {steps[worst]:+.3g}, "
              f"needs every step > {claim.margin:.3g}")
    band = None if noise is None else noise.z * float(noise.sigma.get(claim.column, 0.0) or 0.0) * 2.0
    return _rising(claim, steps, g[-1], g[0], detail, band, _all_at_chance(claim, values, noise))


def _check_best_column(claim: Claim, values: Mapping[str, Mapping[str, Number]], noise: Noise | None,
                       sign: float) -> ClaimResult:
    scores = {c: _mean(values, claim.rows_a, c) for c in claim.columns}
    if any(v is None for v in scores.values()):
        return ClaimResult(claim, "not run", None, None, "some columns have no number yet")
    winner = max(claim.columns, key=lambda c: sign * scores[c])  # type: ignore[operator]
    a = float(scores[claim.column])  # type: ignore[arg-type]
    rival = max((c for c in claim.columns if c != claim.column), key=lambda c: sign * scores[c])  # type: ignore[operator]
    b = float(scores[rival])  # type: ignore[arg-type]
    detail = (f"{'lowest' if sign < 0 else 'highest'} is {winner} ({scores[winner]:.4g}); {claim.column} {a:.4g}, "
              f"the {'lowest' if sign < 0 else 'highest'} other is {rival} ({b:.4g})")
    if a == b:
        # a tie (e.g. several classes at 0) decides nothing
        return ClaimResult(claim, "inconclusive", a, b, f"{claim.column} ties with {rival} at {a:.4g}")
    if noise is not None:
        s = ((float(noise.sigma.get(claim.column, 0.0) or 0.0) ** 2 + float(noise.sigma.get(rival, 0.0) or 0.0) ** 2)
             / max(len(claim.rows_a), 1)) ** 0.5
        band = noise.z * s
        if abs(a - b) <= band:
            return ClaimResult(claim, "inconclusive", a, b, detail + f"; the gap is within the noise band {band:.3g}")
    return ClaimResult(claim, "reproduced" if winner == claim.column else "not reproduced", a, b, detail)


#: One noise estimate for a whole table, or one per row (rows of different depths or
#: datasets have their own spread, like Wu's Tables 1, 3 and 7).
NoiseSpec = Noise | Mapping[str, Noise] | None


def noise_for(claim: Claim, noise: NoiseSpec) -> Noise | None:
    """The :class:`Noise` that applies to ``claim``.

    With one estimate per row, a claim whose rows have different estimates (101 against 50
    layers) takes the most conservative one: per column the largest σ and the largest
    ``z`` of its rows, the trivial predictor's score of its first row.
    """
    if noise is None or isinstance(noise, Noise):
        return noise
    found = [noise[r] for r in list(claim.rows_a) + list(claim.rows_b) if r in noise]
    if not found:
        return None
    unique = list({id(n): n for n in found}.values())
    if len(unique) == 1:
        return unique[0]
    cols = {c for n in unique for c in n.sigma}
    sigma = {c: max(float(n.sigma.get(c, 0.0) or 0.0) for n in unique) for c in cols}
    sources = " ".join(dict.fromkeys(n.source for n in unique if n.source))
    return Noise(sigma=sigma, chance=dict(found[0].chance), z=max(n.z for n in unique), source=sources)


def check_claims(table: PaperTable, ours: Mapping[str, Mapping[str, Number]] | None,
                 noise: NoiseSpec = None) -> list[ClaimResult]:
    """Verdicts of every claim of ``table`` on our numbers (``None``: nothing run yet)."""
    return [check_claim(c, ours or {}, noise_for(c, noise)) for c in table.claims]
