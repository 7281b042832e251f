"""Book-wide views of the transcribed tables and of the recorded verdicts."""

from __future__ import annotations

import pandas as pd

from . import PAPERS, TABLES
from .render import load_verdicts
from .schema import VERDICTS


def tables_index() -> pd.DataFrame:
    """One row per transcribed table: paper, number, caption, dataset, size, claims."""
    rows = []
    for t in sorted(TABLES.values(), key=lambda t: (list(PAPERS).index(t.paper), t.number)):
        rows.append({"paper": t.paper, "table": t.number, "caption": t.caption,
                     "dataset": f"{t.dataset} {t.split}", "rows": len(t.rows),
                     "ours rows": sum(r.ours for r in t.rows), "claims": len(t.claims),
                     "reconstructed": "yes" if t.note else ""})
    return pd.DataFrame(rows)


def _all_claims(profile: str) -> pd.DataFrame:
    recorded = {rec["table"]: {c["id"]: c for c in rec["claims"]} for rec in load_verdicts(profile)}
    rows = []
    for t in sorted(TABLES.values(), key=lambda t: (list(PAPERS).index(t.paper), t.number)):
        for c in t.claims:
            got = recorded.get(t.key, {}).get(c.id)
            rows.append({"paper": t.paper, "table": t.number, "claim": c.text,
                         "verdict": got["verdict"] if got else "not run",
                         "ours": got["detail"] if got else ""})
    return pd.DataFrame(rows, columns=["paper", "table", "claim", "verdict", "ours"])


def verdict_summary(profile: str) -> pd.DataFrame:
    """Claims per paper by verdict (reproduced / not reproduced / inconclusive / not run)."""
    df = _all_claims(profile)
    out = pd.crosstab(df["paper"], df["verdict"]).reindex(index=list(PAPERS), fill_value=0)
    for v in VERDICTS:
        if v not in out.columns:
            out[v] = 0
    out = out[list(VERDICTS)]
    out.loc["all papers"] = out.sum()
    out.index.name = None
    out.columns.name = None
    return out


def verdict_table(profile: str):
    """Every claim that has a verdict in ``profile``; a sentence when none has yet."""
    from IPython.display import Markdown

    df = _all_claims(profile)
    done = df[df["verdict"] != "not run"].reset_index(drop=True)
    if done.empty:
        return Markdown(f"No experiment has recorded a verdict in the `{profile}` profile yet: "
                        "all claims are *not run*.")
    return done
