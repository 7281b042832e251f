"""Book-wide views of the transcribed tables and of the recorded verdicts: the tables'
index, the front page's dashboard (paper x table) and the list of every claim."""

from __future__ import annotations

import html
import json
import os
import platform
import posixpath
from typing import Any

import pandas as pd

from . import PAPERS, TABLES
from .render import (NA_PROFILES, HtmlBlock, Raw, anchor, frame_html, frame_text, load_verdicts, profile_banner,
                     shown_verdict, typeset)
from .schema import VERDICTS


def tables_index(profile: str | None = None, base: str = "notebooks") -> pd.DataFrame:
    """One row per transcribed table: paper, number, caption, dataset, size, claims.

    With ``profile``, each table number links to the page that shows it in that build
    (``base``: the folder of the page showing the index)."""
    pages = _toc_pages() if profile else set()
    rows = []
    for t in sorted(TABLES.values(), key=lambda t: (list(PAPERS).index(t.paper), t.number)):
        # No verdict records here: this page runs first, so links come from the notebooks' code.
        number = _link(str(t.number), table_page(t, None, pages), anchor(t), base) if profile else t.number
        rows.append({"paper": t.paper, "table": number, "caption": t.caption,
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
    """Every claim that has a verdict in ``profile``; a sentence when none has yet
    (the book shows :func:`claims_listing`, which lists every claim)."""
    from IPython.display import Markdown

    df = _all_claims(profile)
    done = df[df["verdict"] != "not run"].reset_index(drop=True)
    if done.empty:
        return Markdown(f"No experiment has recorded a verdict in the `{profile}` profile yet: "
                        "all claims are *not run*.")
    return done


# --------------------------------------------------------------------------- dashboard and claim list
def _ordered_tables():
    return sorted(TABLES.values(), key=lambda t: (list(PAPERS).index(t.paper), t.number))


def _toc_pages() -> set[str]:
    from ..book import toc_pages

    return set(toc_pages())


def _pages_by_source() -> dict[str, str]:
    """Table key -> the first notebook page whose code names it (``TABLES["wu2016.table1"]``)."""
    import re

    import nbformat

    from ..book import NOTEBOOK_SRC, toc_notebooks

    out: dict[str, str] = {}
    for name in toc_notebooks():
        path = NOTEBOOK_SRC / f"{name}.ipynb"
        if name in ("paper_tables", "what_reproduced") or not path.exists():
            continue
        code = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
        for key in re.findall(r"[\"'](\w+\.table\d+)[\"']", code):
            out.setdefault(key, f"notebooks/{name}")
    return out


def table_page(table, record: dict[str, Any] | None, pages: set[str]) -> str:
    """The book page that shows ``table``: the page that recorded its verdicts, else the page
    whose code names the table, else the paper's overview (which shows every transcribed
    table); ``""`` when none is in the book. Without a record the answer does not depend on
    what earlier pages of a build have run (the tables' index runs first)."""
    page = (record or {}).get("page") or ""
    if page in pages:
        return page
    page = _pages_by_source().get(table.key, "")
    if page in pages:
        return page
    overview = f"notebooks/{table.paper}_overview"
    return overview if overview in pages else ""


def _link(text: str, page: str, frag: str, base: str) -> Raw | str:
    if not page:
        return text
    href = posixpath.relpath(f"{page}.html", base or ".") + f"#{frag}"
    return Raw(f'<a href="{html.escape(href)}">{typeset(text)}</a>')


def dashboard_frame(profile: str, base: str = "") -> pd.DataFrame:
    """Paper x table: implemented in this build or not, the verdict counts, a link to the table.

    ``base`` is the folder of the page that shows the frame (``""`` for the front page,
    ``"notebooks"`` for a notebook page), so that the links resolve from there. In the
    profiles of :data:`NA_PROFILES` the verdict counts are not shown: ``n/a (<profile>)``.
    """
    from . import citation  # the package imports this module

    recorded = {rec["table"]: rec for rec in load_verdicts(profile)}
    pages = _toc_pages()
    na = profile in NA_PROFILES
    rows = []
    for t in _ordered_tables():
        rec = recorded.get(t.key)
        got = {c["id"]: c["verdict"] for c in (rec or {}).get("claims", [])}
        verdicts = [got.get(c.id, "not run") for c in t.claims]
        row: dict[str, Any] = {"paper": citation(t.paper), "table": _link(f"Table {t.number}", table_page(t, rec, pages),
                                                                 anchor(t), base),
                               "caption": t.caption, "ours implemented": "yes" if rec else "no",
                               "claims": len(t.claims)}
        if na:
            checked = sum(v != "not run" for v in verdicts)
            row["checked on our numbers"] = checked
            row["verdicts"] = f"n/a ({profile})" if checked else ""
            row["not run"] = len(verdicts) - checked
        else:
            for v in VERDICTS:
                row[v] = sum(x == v for x in verdicts)
        rows.append(row)
    df = pd.DataFrame(rows)
    total = {c: "" for c in df.columns}
    total.update({"paper": "all papers", "table": f"{len(df)} tables",
                  "ours implemented": f"{(df['ours implemented'] == 'yes').sum()} of {len(df)}"})
    for c in df.columns:
        if c in ("claims", "checked on our numbers", "not run", *VERDICTS):
            total[c] = int(df[c].sum())
    if na and total.get("checked on our numbers"):
        total["verdicts"] = f"n/a ({profile})"
    return pd.concat([df, pd.DataFrame([total])], ignore_index=True)


def dashboard(profile: str, base: str = "", banner: bool = False) -> HtmlBlock:
    """The front page's dashboard: the profile banner (``banner=True``) and :func:`dashboard_frame`."""
    from ..profiles import get_profile

    df = dashboard_frame(profile, base)
    head = profile_banner(profile, get_profile(profile).note) if banner else HtmlBlock("", "")
    legend = ("<p class=\"instseg-legend\">One line per transcribed table. <em>ours implemented</em>: this build "
              "ran the table's experiments and recorded verdicts; the others show the paper's numbers only, and "
              "their claims are <em>not run</em>. Each table links to its page.")
    if profile in NA_PROFILES:
        legend += (f" In the <code>{profile}</code> profile the verdicts are not counted: they are computed, "
                   f"but on numbers that mean nothing (<em>n/a ({profile})</em>).")
    legend += "</p>"
    return HtmlBlock(head.html + frame_html(df, css="instseg-dashboard") + legend,
                     (head.text + "\n" if head.text else "") + frame_text(df))


def _cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def wall_time_sentence(rec: dict[str, Any]) -> str:
    """The build's wall time as the executor recorded it (``instseg_lib.book.timings_record``),
    saying which notebooks' times are from this run and which from earlier ones (``--only``)."""
    times = rec.get("notebooks", {}) or {}
    n = len(times)
    total = float(rec.get("total_seconds", sum(times.values())))
    where = "the book's <code>_build/timings.json</code> has every page's time"
    if not rec.get("partial"):
        return f"{total:.0f} s for the {n} notebook{'s' if n != 1 else ''} executed before this summary ({where})"
    rerun = [r for r in rec.get("rerun", []) if r in times]
    text = (f"{total:.0f} s, the sum of the latest recorded time of each of the {n} notebook{'s' if n != 1 else ''} "
            "before this "
            f"summary: this was a partial run (<code>--only</code>) that re-timed {len(rerun)} of them"
            + (f" ({html.escape(', '.join(rerun))})" if rerun else "")
            + (f"; the other {n - len(rerun)} time{'s are' if n - len(rerun) != 1 else ' is'} from the runs that "
               "last executed those pages" if n > len(rerun) else ""))
    missing = [m for m in rec.get("missing", []) if m != rec.get("running")]
    if missing:
        text += f"; {len(missing)} notebook{'s have' if len(missing) != 1 else ' has'} no recorded time yet"
    return f"{text} ({where})"


def build_info(profile: str) -> HtmlBlock:
    """Profile, hardware and wall time of this build (the executor's running timings file).

    Wall-clock numbers: a notebook shows this in a ``# NBVAL_IGNORE_OUTPUT`` cell.
    """
    from ..profiles import default_device

    device = default_device()
    hw = f"device <code>{html.escape(str(device))}</code>; {os.cpu_count()} CPU cores ({html.escape(_cpu_model())})"
    if str(device).startswith("cuda"):
        try:
            import torch

            hw += f"; GPU {html.escape(torch.cuda.get_device_name(0))}"
        except Exception:  # pragma: no cover - no usable GPU
            pass
    path = os.environ.get("INSTSEG_BOOK_TIMINGS", "")
    wall = "not recorded (this page was not run by <code>python -m instseg_lib.book execute</code>)"
    try:
        rec = json.loads(open(path, encoding="utf-8").read()) if path else None
    except (OSError, ValueError):
        rec = None
    if rec and rec.get("profile") == profile:
        wall = wall_time_sentence(rec)
    text = (f"<p class=\"instseg-build\"><strong>This build.</strong> Profile <code>{html.escape(profile)}</code>; "
            f"{hw}; wall time {wall}.</p>")
    return HtmlBlock(text, f"This build: profile {profile}; device {device}")


def claims_listing(profile: str, base: str = "notebooks") -> HtmlBlock:
    """Every claim of every table, grouped by paper and table, each table linked to its page."""
    from . import citation  # the package imports this module

    recorded = {rec["table"]: rec for rec in load_verdicts(profile)}
    pages = _toc_pages()
    parts, text = [], []
    n_all = n_run = 0
    for paper, title in PAPERS.items():
        parts.append(f"<h3>{html.escape(title)}</h3>")
        text.append(title)
        for t in (t for t in _ordered_tables() if t.paper == paper):
            rec = recorded.get(t.key)
            got = {c["id"]: c for c in (rec or {}).get("claims", [])}
            link = _link(f"Table {t.number}", table_page(t, rec, pages), anchor(t), base)
            status = "" if rec else " (ours not implemented yet: every claim is not run)"
            parts.append(f'<h4>{typeset(link)}: {typeset(t.caption)}{html.escape(status)}</h4>')
            if not t.claims:
                parts.append("<p>The paper draws no directional claim from this table.</p>")
                continue
            recs = []
            for c in t.claims:
                g = got.get(c.id)
                verdict = g["verdict"] if g else "not run"
                n_all += 1
                n_run += verdict != "not run"
                recs.append({"claim": c.text, "paper says (where)": c.source,
                             "verdict": shown_verdict(verdict, profile), "ours": g["detail"] if g else ""})
            df = pd.DataFrame(recs)
            parts.append(frame_html(df, css="instseg-claims"))
            text.append(f"Table {t.number}\n" + frame_text(df))
    head = (f"<p>All {n_all} claims of the {len(TABLES)} tables: {n_run} checked on our numbers in the "
            f"<code>{html.escape(profile)}</code> profile, {n_all - n_run} <em>not run</em> (their experiments "
            "are not implemented yet). The verdicts of a smoke build are printed as n/a (smoke).</p>")
    return HtmlBlock(head + "".join(parts), "\n".join(text))
