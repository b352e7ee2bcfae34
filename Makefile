# Every target runs inside .venv, created on first use from the pinned requirements.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test venv clean

venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

## make test: the whole test suite (no network, no AWS account)
test: $(STAMP)
	$(PY) -m pytest

clean:
	rm -rf $(VENV) cdk.out .pytest_cache
