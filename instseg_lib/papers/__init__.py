"""The five papers' tables (23 in all) as data, with their claims.

``TABLES`` maps ``"<paper>.table<N>"`` to a :class:`~instseg_lib.papers.schema.PaperTable`.
Transcriptions live in one module per paper; :mod:`instseg_lib.papers.render` puts the
paper's numbers beside ours.
"""

from __future__ import annotations

import re
from importlib import import_module

from .schema import VERDICTS, Claim, ClaimResult, Noise, NoiseSpec, PaperTable, Row, check_claim, check_claims

#: Paper keys in book order, with their short citation.
PAPERS: dict[str, str] = {
    "wu2016": "Wu, Shen & van den Hengel (2016): Bridging category-level and instance-level semantic image segmentation",
    "arnab2017": "Arnab & Torr (2017): Pixelwise instance segmentation with a dynamically instantiated network",
    "liang2015": "Liang et al. (2015): Proposal-free network for instance-level object segmentation (PFN)",
    "fathi2017": "Fathi et al. (2017): Semantic instance segmentation via deep metric learning",
    "dai2015": "Dai, He & Sun (2015): BoxSup",
}


def citation(paper: str) -> str:
    """The author-year citation of a paper key, from :data:`PAPERS`: ``"Wu et al. 2016"``,
    ``"Arnab & Torr 2017"``. A key that is not one of the papers comes back unchanged."""
    entry = PAPERS.get(paper)
    if entry is None or " (" not in entry.split("):", 1)[0]:
        return paper
    authors, year = entry.split("):", 1)[0].rsplit(" (", 1)
    names = [a.strip() for a in re.split(r",|&", authors.removesuffix(" et al.")) if a.strip()]
    if authors.endswith(" et al.") or len(names) > 2:
        return f"{names[0]} et al. {year}"
    return f"{' & '.join(names)} {year}"


def table_citation(table: PaperTable) -> str:
    """How captions name a table: ``"Wu et al. 2016, Table 1"``."""
    return f"{citation(table.paper)}, Table {table.number}"


def _load() -> dict[str, PaperTable]:
    tables: dict[str, PaperTable] = {}
    for paper in PAPERS:
        module = import_module(f"{__name__}.{paper}")
        for table in module.TABLES:
            table.validate()
            tables[table.key] = table
    return tables


TABLES: dict[str, PaperTable] = _load()


def tables_of(paper: str) -> list[PaperTable]:
    """The tables of one paper, in table-number order."""
    if paper not in PAPERS:
        raise KeyError(f"unknown paper {paper!r}; known: {', '.join(PAPERS)}")
    return sorted((t for t in TABLES.values() if t.paper == paper), key=lambda t: t.number)


__all__ = ["PAPERS", "TABLES", "tables_of", "citation", "table_citation", "PaperTable", "Row", "Claim", "ClaimResult", "Noise", "NoiseSpec", "VERDICTS",
           "check_claim", "check_claims"]
