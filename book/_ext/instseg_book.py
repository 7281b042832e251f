"""Sphinx extension of the book: MathJax from a local copy, and author-year bibliography labels.

MathJax. The built book must render math without a network, so MathJax is served from a
copy inside the HTML (``_static/mathjax``), taken from the first of ``$INSTSEG_MATHJAX``,
``build/mathjax/node_modules/mathjax`` (``make mathjax``: npm ``mathjax@2``) and the Debian
``libjs-mathjax`` package (``/usr/share/javascript/mathjax``). Only what the TeX input and
CommonHTML output need is copied. Without a copy the book falls back to the CDN, with a
warning (an error in a strict build). Math also appears inside notebook outputs (typeset
metric names in captions and table headers), which Sphinx cannot see, so MathJax is put on
every page.

Bibliography. ``sphinxcontrib-bibtex``'s styles label entries alphabetically ("HArbelaezB+11")
while the text cites author-year ("Hariharan et al. [2014]"); the ``instseg`` style labels
each entry "Hariharan et al., 2014", as the text cites it, and keeps ``unsrt``'s links for ``doi``, ``eprint``
(arXiv) and ``url`` fields.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from sphinx.util import logging

logger = logging.getLogger(__name__)

try:
    from instseg_lib.paths import REPO_ROOT as REPO
except ImportError:  # pragma: no cover - the book is always built from the repository's venv
    REPO = Path.cwd()
#: MathJax 2 files the book needs: the loader, the TeX + CommonHTML config, and their parts.
MATHJAX_PARTS = ("MathJax.js", "config/TeX-AMS_CHTML.js", "jax/input/TeX", "jax/output/CommonHTML",
                 "jax/element", "extensions", "fonts/HTML-CSS/TeX/woff")
MATHJAX_CONFIG = {
    "jax": ["input/TeX", "output/CommonHTML"],
    "extensions": ["tex2jax.js"],
    "TeX": {"extensions": ["AMSmath.js", "AMSsymbols.js", "noErrors.js", "noUndefined.js"]},
    # myst-nb marks pages tex2jax_ignore (a "$" in an output is no formula); Sphinx's math spans opt back in.
    "tex2jax": {"inlineMath": [["\\(", "\\)"]], "displayMath": [["\\[", "\\]"]], "processEscapes": True,
                "processClass": "tex2jax_process|mathjax_process|math|output_area"},
    "CommonHTML": {"linebreaks": {"automatic": True}},
    "messageStyle": "none",
    "menuSettings": {"zoom": "None"},
}


def find_mathjax() -> Path | None:
    """The first local MathJax 2 tree (a folder holding ``MathJax.js``), or ``None``."""
    candidates = [os.environ.get("INSTSEG_MATHJAX", ""),
                  str(REPO / "build" / "mathjax" / "node_modules" / "mathjax"),
                  "/usr/share/javascript/mathjax", "/usr/share/nodejs/mathjax"]
    for c in candidates:
        if c and (Path(c) / "MathJax.js").is_file() and (Path(c) / "config" / "TeX-AMS_CHTML.js").is_file():
            return Path(c)
    return None


def copy_mathjax(src: Path, static_root: Path) -> Path:
    """Copy the parts of ``src`` the book needs to ``static_root/mathjax`` (once per source)."""
    dst = static_root / "mathjax"
    stamp = static_root / ".mathjax-source"
    if stamp.exists() and stamp.read_text() == str(src) and (dst / "MathJax.js").exists():
        return dst
    shutil.rmtree(dst, ignore_errors=True)
    for part in MATHJAX_PARTS:
        s, d = src / part, dst / part
        if s.is_dir():
            shutil.copytree(s, d, dirs_exist_ok=True)
        elif s.is_file():
            d.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(s, d)
    static_root.mkdir(parents=True, exist_ok=True)
    stamp.write_text(str(src))
    return dst


def _config_inited(app, config) -> None:
    src = find_mathjax()
    if src is None:
        logger.warning("no local MathJax found (apt-get install libjs-mathjax, or `make mathjax`): "
                       "the book's math loads from the CDN and does not render offline")
        return
    static_root = Path(app.outdir).parent / "instseg-static"
    copy_mathjax(src, static_root)
    config.html_static_path = [*config.html_static_path, str(static_root)]
    config.mathjax_path = "mathjax/MathJax.js"
    config.mathjax2_config = MATHJAX_CONFIG
    config.mathjax_options = {"async": "async"}
    config.instseg_local_mathjax = True


def _builder_inited(app) -> None:
    # myst-nb writes a MathJax 3 configuration at builder-inited; the local copy is MathJax 2.
    if getattr(app.config, "instseg_local_mathjax", False):
        app.config.mathjax3_config = None


# --------------------------------------------------------------------------- bibliography
def _register_bibliography_style() -> None:
    from pybtex.plugin import register_plugin
    from pybtex.richtext import Text
    from pybtex.style.formatting.unsrt import Style as Unsrt
    from pybtex.style.labels import BaseLabelStyle

    def last(person) -> str:
        return Text.from_latex(" ".join(person.prelast_names + person.last_names)).render_as("text")

    class AuthorYearLabels(BaseLabelStyle):
        def format_labels(self, sorted_entries):
            labels = []
            for e in sorted_entries:
                people = e.persons.get("author") or e.persons.get("editor") or []
                if not people:
                    who = e.fields.get("key", e.key)
                elif len(people) == 1:
                    who = last(people[0])
                elif len(people) == 2:
                    who = f"{last(people[0])} and {last(people[1])}"
                else:
                    who = f"{last(people[0])} et al."
                labels.append(f"{who}, {e.fields.get('year', 'n.d.')}")  # as the text cites it
            seen: dict[str, int] = {}
            for lab in labels:
                seen[lab] = seen.get(lab, 0) + 1
            count: dict[str, int] = {}
            for lab in labels:  # "Wu et al., 2016a", "..., 2016b" when two entries share a label
                if seen[lab] > 1:
                    count[lab] = count.get(lab, 0) + 1
                    yield lab + "abcdefghijklmnopqrstuvwxyz"[count[lab] - 1]
                else:
                    yield lab

    class InstsegStyle(Unsrt):
        default_label_style = "instseg_authoryear"

    register_plugin("pybtex.style.labels", "instseg_authoryear", AuthorYearLabels)
    register_plugin("pybtex.style.formatting", "instseg", InstsegStyle)


def setup(app):
    _register_bibliography_style()
    app.set_html_assets_policy("always")
    app.add_config_value("instseg_local_mathjax", False, "html")
    app.connect("config-inited", _config_inited)
    app.connect("builder-inited", _builder_inited, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
