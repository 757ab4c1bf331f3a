# tinyspeech-tf: every target creates or reuses the local virtualenv first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install test lint train train-real ablation zoo firmware-check bench-frontend \
    export-tflite clean

MODEL ?= tinyspeech_m
# The run export-tflite reads (the one `make train` makes); output goes to build/<its name>/.
RUN ?= runs/tinyspeech_m
DATA ?= synthetic
REAL ?= ../shared/data/speech_commands_v0.02_real

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

# The real-data recipe: Speech Commands train split, 150 cosine-decayed epochs, 30 QAT epochs,
# best epoch chosen on val.
train-real: $(STAMP)
	$(VENV)/bin/tinyspeech train --model $(MODEL) --data $(REAL) --epochs 150 \
		--lr-schedule cosine --out runs/real/$(MODEL)

# Selective-attention mode ablation with the real-data recipe -> reports/f_mode_ablation.*
ablation: $(STAMP)
	$(VENV)/bin/tinyspeech ablate-fmode --data $(REAL)

zoo: $(STAMP)
	$(VENV)/bin/tinyspeech zoo

firmware-check: $(STAMP)
	$(PY) -m pytest -q -m firmware tests
	$(PY) -m tinyspeech_tf.frontend_c --sizes

bench-frontend: $(STAMP)
	$(VENV)/bin/tinyspeech bench-frontend

# C/C++ files for TFLM (model data, settings, op resolver, golden vectors) -> build/<run name>/,
# copied into firmware/arduino/TinySpeechM/ and firmware/zephyr/src/model/.
export-tflite: $(STAMP)
	$(VENV)/bin/tinyspeech export-tflite $(RUN) --out build/$(notdir $(patsubst %/,%,$(RUN)))

clean:
	rm -rf build .pytest_cache
