# hookrunner: `make run` starts it, `make test` tests it. Both build .venv first.

VENV := .venv
BIN := $(VENV)/bin

# Django 6 needs Python 3.12+. Try the usual names, then pyenv's own folders,
# because a pyenv shim for a version that is not selected exists but fails to run.
PY_CANDIDATES := python3.13 python3.12 python3 \
	$(wildcard $(HOME)/.pyenv/versions/3.13*/bin/python3) \
	$(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python3)
PYTHON ?= $(firstword $(foreach p,$(PY_CANDIDATES),$(shell $(p) -c 'import sys; print(sys.executable) if sys.version_info >= (3, 12) else None' 2>/dev/null)))

# tests/admin/test_browser.py drives a real headless Chromium: Debian's, installed here when it
# is missing (a file check otherwise). Elsewhere name one: make test CHROMIUM=/path/to/it
CHROMIUM ?= /usr/bin/chromium
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
# Install Debian package $(1), updating the package index first if that fails.
apt_install = DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y --quiet \
	--no-install-recommends $(1) || { $(SUDO) apt-get update --quiet && \
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y --quiet --no-install-recommends $(1); }
# tests/ops/test_deploy.py checks the units with systemd-analyze verify and the nginx example
# with nginx -t: Debian's systemd and nginx packages, installed here when missing (neither
# needs to run).
SYSTEMD_ANALYZE := /usr/bin/systemd-analyze
NGINX := /usr/sbin/nginx
# Every step runs in a bubblewrap sandbox (docs/sandbox.md): Debian's bubblewrap package,
# installed here when missing, for `make run` as for the tests that try to escape it.
BWRAP := /usr/bin/bwrap

.PHONY: run test browser lint format clean

# `make run` installs what hookrunner runs with; `make test` adds the test and lint tools
# (Playwright alone is about half of a full .venv).
$(BIN)/.runtime: pyproject.toml constraints.txt
	@test -n "$(PYTHON)" || { \
		echo "hookrunner needs Python 3.12 or newer, and none was found."; \
		echo "Install one (e.g. 'apt install python3.12 python3.12-venv', or 'pyenv install 3.13')"; \
		echo "or name it: make PYTHON=/path/to/python3.12 ..."; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e .
	@touch $@

$(BIN)/.installed: $(BIN)/.runtime
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $@

run: $(BIN)/.runtime $(BWRAP)
	$(BIN)/python manage.py serve

test: $(BIN)/.installed browser $(SYSTEMD_ANALYZE) $(NGINX) $(BWRAP)
	CHROMIUM=$(CHROMIUM) $(BIN)/python -m pytest $(PYTEST_ARGS)

browser: $(CHROMIUM)

$(CHROMIUM):
	@command -v apt-get >/dev/null || { \
		echo "The browser test needs Chromium at $(CHROMIUM), and there is no apt-get here"; \
		echo "to install Debian's. Install one and name it: make test CHROMIUM=/path/to/it"; \
		exit 1; }
	$(call apt_install,chromium)
	@test -x $@ || { echo "Debian's chromium is installed, but nothing runs at $@"; exit 1; }

$(BWRAP):
	@command -v apt-get >/dev/null || { \
		echo "Steps run in a bubblewrap sandbox, and there is no apt-get here to install"; \
		echo "it: install bubblewrap (bwrap) and name it with BWRAP=/path/to/bwrap in .env."; \
		exit 1; }
	$(call apt_install,bubblewrap)

$(SYSTEMD_ANALYZE) $(NGINX):
	@command -v apt-get >/dev/null || { \
		echo "tests/ops/test_deploy.py needs $@ (Debian's $(notdir $@) package), and there is"; \
		echo "no apt-get here to install it."; exit 1; }
	$(call apt_install,$(if $(filter $(NGINX),$@),nginx-light,systemd))

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: $(BIN)/.installed
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV)
