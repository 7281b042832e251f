# Two commands (README): `make book` regenerates the whole book, `make test` runs the tests.
# PROFILE=smoke|cpu|gpu picks the scale of `make book` (default cpu); `make test` uses smoke.

PROFILE ?= cpu
PYTHON  ?= $(shell command -v python3.11 || command -v python3)
VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
SMOKE_BOOK := build/book-smoke

# MathJax for the book's math, served from a local copy (offline): the Debian libjs-mathjax
# package (.ci/run installs it), else npm's mathjax@2 under build/mathjax.
MATHJAX_DEB := /usr/share/javascript/mathjax/MathJax.js
MATHJAX_NPM := build/mathjax/node_modules/mathjax/MathJax.js

.PHONY: setup check-profile data book test bench clean mathjax
.DEFAULT_GOAL := book

$(PY):
	@test -n "$(PYTHON)" || { echo "error: no python3.11 or python3 on PATH: install Python 3.11" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)

# Re-installs when pyproject.toml changes.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[test]"
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (instseg)" >/dev/null
	@touch $(STAMP)

setup: $(STAMP)

mathjax:
	@if [ -n "$$INSTSEG_MATHJAX" ] || [ -f $(MATHJAX_DEB) ] || [ -f $(MATHJAX_NPM) ]; then :; \
	elif command -v npm >/dev/null 2>&1; then \
	  npm install --silent --no-audit --no-fund --prefix build/mathjax mathjax@2.7.9; \
	else echo "warning: no local MathJax (apt-get install libjs-mathjax, or install npm): the book's math needs a network" >&2; fi

data: setup
	@$(PY) -m instseg_lib.profiles $(PROFILE) >/dev/null
	$(PY) -m instseg_lib.data.synthetic --all --profile $(PROFILE)

# Before the data: the gpu profile without CUDA is refused before hours of twin generation
# (INSTSEG_ALLOW_GPU_PROFILE_ON_CPU=1 overrides; `make data PROFILE=gpu` alone is allowed).
check-profile: setup
	@$(PY) -m instseg_lib.profiles $(PROFILE) --check >/dev/null

book: check-profile data mathjax
	$(PY) -m instseg_lib.book execute --profile $(PROFILE)
	$(PY) -m instseg_lib.book build

test: setup mathjax
	$(PY) -m instseg_lib.data.synthetic --all --profile smoke
	$(PY) -m instseg_lib.book execute --profile smoke --book-dir $(SMOKE_BOOK)
	INSTSEG_SMOKE_BOOK=$(SMOKE_BOOK) INSTSEG_PROGRESS=0 PYTHONWARNINGS=ignore PROFILE=smoke $(PY) -m pytest tests $(SMOKE_BOOK)/notebooks \
		--nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg -p no:cacheprovider

bench: setup
	$(PY) benchmarks/bench_data.py
	$(PY) benchmarks/bench_metrics.py
	$(PY) benchmarks/bench_fcrn.py
	$(PY) benchmarks/bench_pfn.py
	$(PY) benchmarks/bench_proposals.py
	$(PY) benchmarks/bench_boxsup_update.py
	$(PY) benchmarks/bench_fathi.py
	$(PY) benchmarks/bench_arnab.py
	$(PY) benchmarks/bench_mfu.py

clean:
	rm -rf build book/_build book/notebooks
