"""Run a paper's table experiments outside the notebooks: one GPU, several under ``torchrun``.

The notebooks run their experiments through the recipes and render from the results cache.
This command runs the same calls headless, so the expensive part can be given to ``torchrun``
(the training loop is DDP-aware: every rank trains its share of each global batch, rank 0
writes the result) and the notebook afterwards only reads the cache::

    python -m instseg_lib.run wu2016 --profile gpu                       # one GPU
    torchrun --nproc_per_node=8 -m instseg_lib.run wu2016 --profile gpu  # eight GPUs, one node
    python -m instseg_lib.book execute --profile gpu --only wu2016_table1   # render from the cache

Each entry of :data:`TABLES` makes exactly the calls its notebook makes (a test checks the
notebook's source for them), including the seed replicates behind the table's noise band.
``--list`` prints the entries. The real datasets and ImageNet weights are chosen by the same
switches as everywhere (README: real data, initialisation).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable

from .profiles import Profile, ProfileDeviceError, UnknownProfileError, check_can_start, get_profile


@dataclass(frozen=True)
class TableRun:
    """The experiments of one notebook table: ``run(profile)`` returns its results."""

    notebook: str
    calls: tuple[str, ...]  # the recipe calls, as the notebook spells them
    run: Callable[[Profile], Any]


def _wu_table1(p: Profile) -> Any:
    from .papers import TABLES as PAPER_TABLES
    from .recipes import wu2016 as wu

    plan = wu.plan_semantic(PAPER_TABLES["wu2016.table1"].key, p, "voc")
    return wu.run_plan(plan), wu.noise_by_row(plan, p)


def _arnab_table1(p: Profile) -> Any:
    from .recipes import arnab2017 as arnab

    return arnab.table1_runs(p), arnab.noise_runs(p, "voc")


def _pfn_table1(p: Profile) -> Any:
    from .recipes import liang2015 as pfn

    return pfn.run_plan(pfn.plan(p)), pfn.seed_runs(p)


def _fathi_table1(p: Profile) -> Any:
    from .recipes import fathi2017 as fathi

    return fathi.evaluations(p)


def _boxsup_table1(p: Profile) -> Any:
    from .recipes import dai2015 as boxsup

    return boxsup.run_table(boxsup.table1_configs(p))


#: ``{paper: {table: TableRun}}``: each paper's headline table.
TABLES: dict[str, dict[str, TableRun]] = {
    "wu2016": {"table1": TableRun("wu2016_table1",
                                  ("wu.plan_semantic(", "wu.run_plan(plan)", "wu.noise_by_row(plan, P)"), _wu_table1)},
    "arnab2017": {"table1": TableRun("arnab2017_table1_table2", ("arnab.table1_runs(P)", 'arnab.noise_runs(P, "voc")'),
                                     _arnab_table1)},
    "liang2015": {"table1": TableRun("liang2015_table1_table2_table3",
                                     ("pfn.plan(P)", "pfn.run_plan(rows)", "pfn.seed_runs(P)"), _pfn_table1)},
    "fathi2017": {"table1": TableRun("fathi2017_table1", ("fathi.evaluations(P)",), _fathi_table1)},
    "dai2015": {"table1": TableRun("dai2015_table1_table2_table3", ("boxsup.run_table(boxsup.table1_configs(P))",),
                                   _boxsup_table1)},
}


def main(argv: list[str] | None = None) -> int:
    """``python -m instseg_lib.run PAPER [--table T] [--profile P] | --list``."""
    ap = argparse.ArgumentParser(prog="python -m instseg_lib.run", description=__doc__.split("\n")[0])
    ap.add_argument("paper", nargs="?", choices=sorted(TABLES))
    ap.add_argument("--table", default="table1")
    ap.add_argument("--profile", default=None, help="smoke | cpu | gpu (default $PROFILE, else cpu)")
    ap.add_argument("--list", action="store_true", help="print the papers and tables this command runs")
    args = ap.parse_args(argv)
    if args.list or not args.paper:
        for paper, tables in TABLES.items():
            for key, t in tables.items():
                print(f"{paper} --table {key}: the experiments of notebooks/{t.notebook}.ipynb")
        return 0
    if args.table not in TABLES[args.paper]:
        print(f"error: {args.paper} has no runnable table {args.table!r}; use one of "
              f"{', '.join(TABLES[args.paper])}", file=sys.stderr)
        return 2
    try:
        p = get_profile(args.profile)
        check_can_start(p)
    except (UnknownProfileError, ProfileDeviceError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    t = TABLES[args.paper][args.table]
    t0 = time.perf_counter()
    t.run(p)
    from .train import world

    if world()[0] == 0:
        print(f"{args.paper} {args.table} at profile {p.name}: done in {time.perf_counter() - t0:.0f} s; render it "
              f"with `python -m instseg_lib.book execute --profile {p.name} --only {t.notebook}`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
