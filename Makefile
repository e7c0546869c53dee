# hookrunner: `make run` starts it, `make test` tests it. Both build .venv first.

VENV := .venv
BIN := $(VENV)/bin

# Django 6 needs Python 3.12+. Try the usual names, then pyenv's own folders,
# because a pyenv shim for a version that is not selected exists but fails to run.
PY_CANDIDATES := python3.13 python3.12 python3 \
	$(wildcard $(HOME)/.pyenv/versions/3.13*/bin/python3) \
	$(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python3)
PYTHON ?= $(firstword $(foreach p,$(PY_CANDIDATES),$(shell $(p) -c 'import sys; print(sys.executable) if sys.version_info >= (3, 12) else None' 2>/dev/null)))

.PHONY: run test lint format clean

$(BIN)/.installed: pyproject.toml constraints.txt
	@test -n "$(PYTHON)" || { \
		echo "hookrunner needs Python 3.12 or newer, and none was found."; \
		echo "Install one (e.g. 'apt install python3.12 python3.12-venv', or 'pyenv install 3.13')"; \
		echo "or name it: make PYTHON=/path/to/python3.12 ..."; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $@

run: $(BIN)/.installed
	$(BIN)/python manage.py serve

test: $(BIN)/.installed
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(BIN)/.installed
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV)
