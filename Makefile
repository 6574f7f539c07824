# Two commands do all the set-up on a fresh machine (see README.md):
#   make test   unit tests + nbval regression tests of the chapters (smoke profile)
#   make book   every chapter with the default profile through papermill, then the HTML book
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PROFILE ?= default
SEED ?= 0
CHAPTERS := $(sort $(wildcard book/[0-9][0-9]_*.ipynb))
EXECUTED := _build/executed
RESULTS := _build/results

.PHONY: test unit nbval book chapters html bench clean

$(BIN)/.installed: requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

test: unit nbval

unit: $(BIN)/.installed
	$(BIN)/python -m pytest tests

nbval: $(BIN)/.installed
	$(BIN)/python -m pytest --nbval --nbval-sanitize-with book/nbval_sanitize.cfg \
	  --nbval-current-env -p no:cacheprovider $(CHAPTERS)

book:
	$(MAKE) chapters
	$(MAKE) html

chapters: $(BIN)/.installed
	@mkdir -p $(EXECUTED)/book $(RESULTS)
	@for nb in $(CHAPTERS); do \
	  echo "== $$nb ($(PROFILE) profile)"; \
	  $(BIN)/papermill $$nb $(EXECUTED)/$$nb -k python3 --cwd book \
	    -p profile $(PROFILE) -p seed $(SEED) -p out_dir $(RESULTS) || exit 1; \
	done

html: $(BIN)/.installed
	$(BIN)/python tools/build_book.py --executed $(EXECUTED) --out _build

bench: $(BIN)/.installed
	$(BIN)/python bench/readout_speed.py

clean:
	rm -rf _build
