# The everyday verbs. Both main targets create .venv and install what they need.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint install install-test clean
.PHONY: bench bench-scale bench-site bench-mail bench-search bench-sync

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install -q -e .

install-test: $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'

demo: install
	@$(BIN)/gitdesk site build
	@echo "Open: $(CURDIR)/site/index.html"

test: install-test
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: install-test
	$(BIN)/ruff check tools tests hooks

# Speed measurements (minutes, not part of `make test`); results in benchmarks/results/.
# `make bench` is the side-by-side with Roundup at 1,000 and 10,000 issues (about 6 minutes);
# each bench-* target runs one benchmark on its own.
bench: install
	$(BIN)/python benchmarks/scale/run.py $(BENCH_ARGS)

bench-scale: install
	$(BIN)/python benchmarks/scale/run.py $(BENCH_ARGS)

bench-site: install
	$(BIN)/python benchmarks/site/run.py $(BENCH_ARGS)

bench-mail: install
	$(BIN)/python benchmarks/mail/run.py $(BENCH_ARGS)

bench-search: install
	$(BIN)/python benchmarks/search/run.py $(BENCH_ARGS)

bench-sync: install
	$(BIN)/python benchmarks/sync/run.py $(BENCH_ARGS)

clean:
	rm -rf site site-staff .pytest_cache
