# coord: two commands on a fresh machine (Python >= 3.11, pip, make).
#   make run   serve coord on http://127.0.0.1:8080 with an embedded PostgreSQL and demo data
#   make test  run the whole test suite against a real PostgreSQL
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test test-faults lint bench install clean score-recurring

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	COORD_DEMO=$${COORD_DEMO:-1} $(BIN)/coord serve

test: $(STAMP)
	$(BIN)/python -m pytest -q -rs -p no:cacheprovider $(PYTEST_ARGS)

# B-cubed precision/recall/F1 of the recurring-problems view on shared/data/recurring-dev.jsonl.
score-recurring: $(STAMP)
	$(BIN)/python -m pytest -q -s -p no:cacheprovider tests/api/test_recurring_score.py

# make test-faults: kill -9 (mid-load, during projection catch-up, during a rebuild), PostgreSQL
# stopped and frozen, disk full (a tmpfs: needs root, else skipped), --workers leader killed, unsafe
# durability, then export + verify (issue 13). SHORT=1: shorter outages (CI). Figures: .coord/faults.json
test-faults: $(STAMP)
	mkdir -p .coord
	COORD_FAULTS=1 $(if $(SHORT),COORD_FAULTS_SHORT=1,) COORD_FAULTS_OUT=.coord/faults.json \
		$(BIN)/python -m pytest -q -p no:cacheprovider tests/faults $(PYTEST_ARGS)

# make lint: ruff (rules and formatting), mypy --strict, and the import rule of events/__init__.py.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/unit/test_layers.py

# make bench: quick (< 4 min); FULL=1: 1M events; SMOKE=1: seconds; WORKERS=N: coord serve
# --workers N. Last line: the path of the JSON.
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	$(BIN)/python -m bench $(if $(FULL),--full,$(if $(SMOKE),--smoke,)) $(if $(WORKERS),--workers $(WORKERS),)

clean:
	rm -rf $(VENV) .coord
