# Two commands do all the set-up on a fresh machine (see README.md):
#   make test   unit tests + nbval regression tests of the chapters (smoke profile)
#   make book   every chapter with the default profile through papermill, then the HTML book
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PROFILE ?= default
SEED ?= 0
# More papermill arguments for every chapter, e.g. PAPERMILL_EXTRA="-p data_root /datasets".
PAPERMILL_EXTRA ?=
CHAPTERS := $(sort $(wildcard book/[0-9][0-9]_*.ipynb))
EXECUTED := _build/executed
RESULTS := _build/results
# `make book` runs JOBS chapters at once, each with THREADS torch threads. One thread per chapter
# is the reference set-up: the numbers in the chapters' prose come from it, and a different thread
# count changes the order of floating-point sums, so trained networks (and close claims) can differ.
NPROC := $(shell nproc 2>/dev/null || echo 2)
JOBS ?= $(NPROC)
THREADS ?= 1
# The two longest chapters (4, and 1, which 2 and 3 need) start first. Chapters 2 and 3 need
# chapter 1's caches; while they wait, make fills free slots with the independent chapters, and in
# practice starts them last. With JOBS=2 on 2 cores a fresh clone's `make book` (install and HTML
# included) took 58.3 minutes at seed 0 with the machine otherwise idle, and 66.0 at seed 1 with
# other work on it for the first 26 minutes: chapters 1, 5, 6, 3 in one lane and 4 (37 and 44
# minutes), 7, 2 in the other; each chapter's time is in the reproducibility appendix.
FIRST := $(EXECUTED)/book/01_existence.ipynb $(EXECUTED)/book/04_padding_in_tasks.ipynb
RUNS := $(FIRST) $(filter-out $(FIRST),$(CHAPTERS:book/%=$(EXECUTED)/book/%))

.PHONY: test unit nbval paper-check book chapters html bench browser-test clean FORCE

# A venv whose python no longer runs (its base Python was updated or removed, e.g. a venv restored
# from CI's cache onto a newer runner image) is made anew, even where .installed looks up to date.
VENV_RUNS := $(shell $(BIN)/python -c 'print("yes")' 2>/dev/null)
$(BIN)/.installed: requirements.txt pyproject.toml $(if $(VENV_RUNS),,FORCE)
	$(BIN)/python -c '' 2>/dev/null || { rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

test: unit nbval

unit: $(BIN)/.installed
	$(BIN)/python -m pytest tests

# After the notebooks, the same session compares the results they wrote with book/smoke_reference/
# up to a tolerance (book/test_smoke_reference.py; tools/store_smoke_outputs.py stores both).
nbval: $(BIN)/.installed
	$(BIN)/python -m pytest --nbval --nbval-sanitize-with book/nbval_sanitize.cfg \
	  --nbval-current-env -p no:cacheprovider $(CHAPTERS) book/test_smoke_reference.py

# Every chapter's paper profile end to end on the CPU, on fake data in the real on-disk formats
# and randomly initialised weights saved where the real ones go, at tiny counts (tools/paper_check.py).
paper-check: $(BIN)/.installed
	OMP_NUM_THREADS=$(NPROC) MKL_NUM_THREADS=$(NPROC) $(BIN)/python tools/paper_check.py

book:
	$(MAKE) chapters
	$(MAKE) html

chapters: $(BIN)/.installed
	@mkdir -p $(EXECUTED)/book $(RESULTS)
	$(MAKE) -j$(JOBS) $(RUNS)

# Chapters 2 and 3 reuse the encoders and features chapter 1 trains and caches.
$(EXECUTED)/book/02_ablations.ipynb $(EXECUTED)/book/03_padding.ipynb: $(EXECUTED)/book/01_existence.ipynb

# Every chapter reruns on every `make book` (the library may have changed); its own caches make an
# unchanged experiment cheap. The chapter's wall time goes to its results folder.
$(EXECUTED)/book/%.ipynb: book/%.ipynb FORCE
	@echo "== $< ($(PROFILE) profile, $(THREADS) threads)"
	@mkdir -p $(RESULTS)/$* $(dir $@)
	@start=$$(date +%s); \
	OMP_NUM_THREADS=$(THREADS) MKL_NUM_THREADS=$(THREADS) $(BIN)/papermill $< $@ -k python3 --cwd book \
	  --no-progress-bar -p profile $(PROFILE) -p seed $(SEED) -p out_dir $(RESULTS) $(PAPERMILL_EXTRA) >$(RESULTS)/$*/papermill.log 2>&1 \
	  || { tail -n 40 $(RESULTS)/$*/papermill.log; exit 1; }; \
	echo "$$(( $$(date +%s) - start ))" >$(RESULTS)/$*/wall_seconds.txt; \
	echo "== $< done in $$(cat $(RESULTS)/$*/wall_seconds.txt) s"

FORCE:

# The scale model of the paper profile (seconds, machine-independent) goes on every build's
# benchmarks page; make bench adds the timings.
html: $(BIN)/.installed
	$(BIN)/python bench/paper_scale.py
	POSINFO_CHAPTER_THREADS=$(THREADS) $(BIN)/python tools/build_book.py --executed $(EXECUTED) --out _build

bench: $(BIN)/.installed
	$(BIN)/python bench/readout_speed.py
	$(BIN)/python bench/layout_speed.py
	$(BIN)/python bench/readout_loss.py
	$(BIN)/python bench/paper_scale.py

# Open the built book in headless Chromium (Debian's, or $CHROME_BIN with $CHROMEDRIVER) and check
# every page, figure, table, internal link and the search. Needs `make book` (or `make html`) first.
browser-test: $(BIN)/.installed
	@test -f _build/html/index.html || { echo "_build/html is missing: run make book first"; exit 1; }
	@test -x "$${CHROME_BIN:-/usr/bin/chromium}" -a -x "$${CHROMEDRIVER:-/usr/bin/chromedriver}" || \
	  $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get install -y -q chromium chromium-driver
	$(BIN)/python -m pip install --quiet -r requirements-browser.txt
	$(BIN)/python tools/browser_test.py _build/html

clean:
	rm -rf _build
