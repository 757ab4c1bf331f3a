# tinyspeech-tf: every target creates or reuses the local virtualenv first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install test lint train zoo firmware-check bench-frontend clean

MODEL ?= tinyspeech_m
DATA ?= synthetic

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check .

# Offline by default: DATA=synthetic generates the espeak-ng keyword set once into .cache/.
train: $(STAMP)
	$(VENV)/bin/tinyspeech train --model $(MODEL) --data $(DATA) --out runs/$(MODEL)

zoo: $(STAMP)
	$(VENV)/bin/tinyspeech zoo

firmware-check: $(STAMP)
	$(PY) -m pytest -q -m firmware tests
	$(PY) -m tinyspeech_tf.frontend_c --sizes

bench-frontend: $(STAMP)
	$(VENV)/bin/tinyspeech bench-frontend

clean:
	rm -rf build .pytest_cache
