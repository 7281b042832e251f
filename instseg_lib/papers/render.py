"""Paper versus ours, side by side, with a difference column and a verdict per claim.

The one function the table notebooks call is :func:`show_comparison`. It displays a
caption (dataset, profile, hardware, run time), the table, and the claims with their
verdicts, and records the verdicts under ``results/<profile>/verdicts/`` where the
"What reproduced" page collects them.

"Ours" numbers are passed in the paper's units (per cent where the paper prints per cent)
and always come from experiment results; this module never makes up a number.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import pandas as pd

from ..experiments import read_result, write_result
from ..paths import results_root
from .schema import ClaimResult, Noise, NoiseSpec, PaperTable, check_claims

Ours = Mapping[str, Mapping[str, float | int | None]]

#: Tables with more value columns than this are shown transposed (one row per column).
WIDE = 6


def _row_label(table: PaperTable, row_id: str) -> str:
    row = table.row(row_id)
    parts = [str(row.cells[c]) for c in table.key_columns if row.cells.get(c) not in (None, "")]
    return " / ".join(parts) if parts else row_id


def compare_table(table: PaperTable, ours: Ours | None = None, *, digits: int = 2) -> pd.DataFrame:
    """A DataFrame of paper, ours and ours - paper for every row and value column.

    Rows we do not reproduce (other methods) keep an empty ours side. Wide (per-class)
    tables come transposed: one row per column, one column group per table row.
    """
    ours = ours or {}
    records = []
    for row in table.rows:
        for col in table.value_columns:
            paper = row.cells.get(col)
            mine = ours.get(row.id, {}).get(col) if row.ours else None
            diff = None if paper is None or mine is None else float(mine) - float(paper)
            records.append({"row": _row_label(table, row.id), "column": col, "paper": paper,
                            "ours": mine, "Δ (ours − paper)": diff})
    df = pd.DataFrame.from_records(records)
    for c in ("paper", "ours", "Δ (ours − paper)"):
        df[c] = pd.to_numeric(df[c], errors="coerce").round(digits)
    row_order = list(dict.fromkeys(df["row"]))
    col_order = list(table.value_columns)
    if len(table.value_columns) > WIDE:
        out = df.pivot(index="column", columns="row", values=["paper", "ours", "Δ (ours − paper)"])
        out = out.swaplevel(0, 1, axis=1).reindex(columns=row_order, level=0)
        out = out.reindex(col_order)
    else:
        out = df.pivot(index="row", columns="column", values=["paper", "ours", "Δ (ours − paper)"])
        out = out.swaplevel(0, 1, axis=1).reindex(columns=col_order, level=0).reindex(row_order)
    out.index.name = None
    out.columns.names = [None, None]
    return out.astype(object).where(out.notna(), "")


def claims_frame(results: list[ClaimResult]) -> pd.DataFrame:
    """One row per claim: its text, our two compared numbers and the verdict."""
    rows = []
    for r in results:
        rows.append({"claim": r.claim.text, "paper says (where)": r.claim.source,
                     "ours": r.detail, "verdict": r.verdict})
    return pd.DataFrame(rows, columns=["claim", "paper says (where)", "ours", "verdict"])


@dataclass(frozen=True)
class Provenance:
    """What the caption says about our side: where and how it was computed."""

    dataset: str
    profile: str
    hardware: str = ""
    wall_seconds: float | None = None
    note: str = ""

    def caption(self, table: PaperTable, extra: str = "") -> str:
        """The caption; ``extra`` (e.g. the noise sentence) goes before the transcription note."""
        parts = [f"**{table.paper} Table {table.number}.** {table.caption}",
                 f"Paper: {table.dataset} {table.split}. Ours: {self.dataset}, profile `{self.profile}`"]
        if self.hardware:
            parts.append(f"on {self.hardware}")
        if self.wall_seconds is not None:
            parts.append(f"in {self.wall_seconds:.0f} s of training and evaluation")
        text = parts[0] + " " + ", ".join(parts[1:]) + "."
        if self.note:
            text += " " + self.note.rstrip(".") + "."
        if extra:
            text += " " + extra
        if table.note:
            text += f" *Transcription note:* {table.note}"
        return text


def verdicts_path(profile: str, table: PaperTable):
    return results_root() / profile / "verdicts" / f"{table.key}.json"


def _noises(noise: NoiseSpec) -> list[Noise]:
    if noise is None:
        return []
    if isinstance(noise, Noise):
        return [noise]
    return list({id(n): n for n in noise.values()}.values())


def noise_sentence(noise: NoiseSpec) -> str:
    """One sentence for a caption: how verdicts account for run-to-run noise."""
    noises = _noises(noise)
    if not noises:
        return ("*Verdicts compare single runs without a noise estimate*: a small difference may be "
                "seed noise.")
    return (f"*Noise:* {' '.join(n.source for n in noises)} A difference counts only beyond "
            f"{noises[0].z:.3g} standard deviations of a difference of runs (a 95% band, Student's t for "
            "the number of seeds); closer calls, and comparisons between runs that all sit at the trivial "
            "predictor's level, are *inconclusive*.")


def _noise_record(n: Noise) -> dict[str, Any]:
    return {"sigma": dict(n.sigma), "chance": dict(n.chance), "z": n.z, "source": n.source}


def record_verdicts(table: PaperTable, results: list[ClaimResult], provenance: Provenance,
                    noise: NoiseSpec = None) -> None:
    """Write this table's verdicts (checksummed, atomic) for the "What reproduced" page."""
    write_result(verdicts_path(provenance.profile, table), {
        "table": table.key, "caption": table.caption, "paper": table.paper, "number": table.number,
        "dataset": provenance.dataset, "profile": provenance.profile,
        "noise": [_noise_record(n) for n in _noises(noise)],
        "claims": [r.as_dict() for r in results],
    })


def load_verdicts(profile: str) -> list[dict[str, Any]]:
    """Every recorded table's verdicts for ``profile`` (corrupt files are skipped, with a warning)."""
    folder = results_root() / profile / "verdicts"
    out = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        rec = read_result(path)
        if rec is not None:
            out.append(rec)
    return out


def show_comparison(table: PaperTable, ours: Ours | None, provenance: Provenance,
                    noise: NoiseSpec = None) -> list[ClaimResult]:
    """Display caption, paper-vs-ours table and claim verdicts; record the verdicts.

    With ``ours=None`` (nothing run yet) the ours side is empty and every claim is
    "not run"; nothing is recorded then. ``noise`` (seed spread and chance level of our
    runs; one for the table or one per row) makes claims decided within noise ``inconclusive``.
    """
    from IPython.display import Markdown, display

    results = check_claims(table, ours, noise)
    display(Markdown(provenance.caption(table, noise_sentence(noise) if ours else "")))
    display(compare_table(table, ours))
    if results:
        display(claims_frame(results))
    if ours:
        record_verdicts(table, results, provenance, noise)
    return results


def show_paper_tables(paper: str, profile: str) -> None:
    """Every transcribed table of ``paper`` with an empty ours side (nothing run yet)."""
    from IPython.display import Markdown, display

    from . import tables_of

    for table in tables_of(paper):
        display(Markdown(f"### Table {table.number}"))
        show_comparison(table, None, Provenance(dataset="not run yet", profile=profile))


__all__ = ["show_paper_tables", "compare_table", "claims_frame", "show_comparison", "Provenance", "record_verdicts",
           "noise_sentence", "load_verdicts", "verdicts_path"]
