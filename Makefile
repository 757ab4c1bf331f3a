# tinyspeech-tf: every target creates or reuses the local virtualenv first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install test lint train train-real pretrained ablation zoo firmware-check bench-frontend \
    firmware-ram export-tflite stream-report bench bench-scale explore explore-arena8k m-graph-report seeds \
    synthetic-report recipe variants \
    clean

MODEL ?= tinyspeech_m
# The run export-tflite reads: by default the shipped pretrained TinySpeech-M (trained on real
# speech; `make pretrained` regenerates it), or e.g. RUN=runs/tinyspeech_m after `make train`.
# Output goes to build/<its name>/.
RUN ?= tinyspeech_tf/pretrained/tinyspeech_m
DATA ?= synthetic
REAL ?= ../shared/data/speech_commands_v0.02_real

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

test: lint
	$(PY) -m pytest -q

# Style, and the import contract of .importlinter (library stages import only downward).
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

# Offline by default: DATA=synthetic generates the espeak-ng keyword set once into .cache/.
# WORDS=marvin,sheila,bed trains your own keywords (DATA must be a Speech Commands archive).
WORDS ?=
# More `tinyspeech train` options, e.g. TRAIN_ARGS="--epochs 1 --qat-epochs 0" for a smoke run.
TRAIN_ARGS ?=

train: $(STAMP)
	$(VENV)/bin/tinyspeech train --model $(MODEL) --data $(DATA) --out runs/$(MODEL) \
		$(if $(WORDS),--words $(WORDS)) $(TRAIN_ARGS)

# The real-data recipe `real` (defined once, in tinyspeech_tf/train/recipes.py) on the Speech
# Commands train split; the best epoch on val is kept.
train-real: $(STAMP)
	$(VENV)/bin/tinyspeech train --model $(MODEL) --data $(REAL) --recipe real \
		--out runs/real/$(MODEL)

# The shipped models (tinyspeech_tf/pretrained/<model>/: Keras weights, int8 model, labels,
# front-end, metrics, card, detector, SHA256SUMS), trained by the `real` recipe into
# runs/real/<model> (finished runs are kept); the detector of TinySpeech-M is chosen by
# `make stream-report` first.
PRETRAINED_MODELS ?= tinyspeech_m tinyspeech_x tinyspeech_y tinyspeech_z tinyspeech_m_explored \
	tinyspeech_m_arena8k ds_cnn

pretrained: $(STAMP)
	for m in $(PRETRAINED_MODELS); do \
		test -f runs/real/$$m/metrics.json || $(MAKE) train-real MODEL=$$m || exit 1; \
	done
	$(MAKE) stream-report STREAM_RUN=runs/real/tinyspeech_m
	$(VENV)/bin/tinyspeech pretrained --into tinyspeech_tf/pretrained \
		--update $(addprefix runs/real/,$(PRETRAINED_MODELS))

# Changes to the real-data recipe measured one at a time over RECIPE_SEEDS seeds on
# RECIPE_MODELS -> reports/recipe.{json,md} (runs in runs/recipe/<variant>/, finished ones kept).
RECIPE_MODELS ?= tinyspeech_m
RECIPE_SEEDS ?= 3
RECIPE_VARIANTS ?= baseline,distill,label_smoothing,spec_augment,time_shift_200ms,distill+label_smoothing

recipe: $(STAMP)
	$(VENV)/bin/tinyspeech recipe --data $(REAL) --models $(RECIPE_MODELS) \
		--seeds $(RECIPE_SEEDS) --variants $(RECIPE_VARIANTS)

# Selective-attention mode ablation with the real-data recipe -> reports/f_mode_ablation.*
ablation: $(STAMP)
	$(VENV)/bin/tinyspeech ablate-fmode --data $(REAL)

# The zoo's cost table (params, MACs, int8 bytes, arena, ops) -> README.md's zoo block.
zoo: $(STAMP)
	$(VENV)/bin/tinyspeech zoo --readme README.md

# The firmware tests, the front-end's Cortex-M4 code size, and the runner's RAM by part for the
# shipped model (sizeof on a QEMU Cortex-M4; exits 1 if it exceeds its 4 KB budget).
firmware-check: $(STAMP)
	$(PY) -m pytest -q -m firmware tests
	$(PY) -m tinyspeech_tf.frontend_c --sizes
	$(PY) -m tinyspeech_tf.firmware_state

# The runner's RAM by part (QEMU Cortex-M4, the shipped TinySpeech-M's export) into the README.
firmware-ram: $(STAMP)
	$(PY) -m tinyspeech_tf.firmware_state --readme README.md

bench-frontend: $(STAMP)
	$(VENV)/bin/tinyspeech bench-frontend

# C/C++ files for TFLM (model data, settings, op resolver, golden vectors) -> build/<run name>/,
# copied into firmware/arduino/TinySpeechM/ and firmware/zephyr/src/model/.
export-tflite: $(STAMP)
	$(VENV)/bin/tinyspeech export-tflite $(RUN) --out build/$(notdir $(patsubst %/,%,$(RUN)))

# Streaming detection as a board runs it: two seeded STREAM_MINUTES-minute streams of real val
# clips (keywords, unknown words, silence) over the official background noise, each of one
# half of the val speakers, with their label tracks. The detector (threshold, averaging window,
# count) is chosen on the first at every stride, the highest hit rate within
# STREAM_MAX_FA false alarms per hour, and scored unchanged on the second; the settings for the
# board's stride go to STREAM_RUN/detector.json (export-tflite writes them into
# model_settings.h). The MLPerf reference and our DS-CNN (when runs/real/ds_cnn exists) go
# through the same procedure as anchors -> reports/stream_<run name>.{json,md,png}.
STREAM_RUN ?= runs/real/tinyspeech_m
STREAM_MINUTES ?= 10
STREAM_MAX_FA ?= 6
STREAM_ARGS ?=
STREAM_TUNE_WAV := build/stream/tune_$(STREAM_MINUTES)min.wav
STREAM_TEST_WAV := build/stream/test_$(STREAM_MINUTES)min.wav
MLPERF_LABELS := down,go,left,no,off,on,right,stop,up,yes,silence,unknown
STREAM_ANCHORS := --anchor mlperf_ref=../shared/models/mlperf_tiny_kws_ref_int8.tflite@$(MLPERF_LABELS) \
	$(if $(wildcard runs/real/ds_cnn/model_int8.tflite),--anchor ds_cnn=runs/real/ds_cnn)

stream-report: $(STAMP)
	$(VENV)/bin/tinyspeech stream-make $(STREAM_TUNE_WAV) --data $(REAL)/val \
		--minutes $(STREAM_MINUTES) --seed 1 --speakers a
	$(VENV)/bin/tinyspeech stream-make $(STREAM_TEST_WAV) --data $(REAL)/val \
		--minutes $(STREAM_MINUTES) --seed 2 --speakers b
	$(VENV)/bin/tinyspeech stream-tune $(STREAM_RUN) --tune $(STREAM_TUNE_WAV) \
		--test $(STREAM_TEST_WAV) --max-fa-per-hour $(STREAM_MAX_FA) $(STREAM_ANCHORS) \
		$(STREAM_ARGS)

# Zoo vs peer int8 models in one process (accuracy on REAL's val, bytes, arena, interleaved
# TFLM latency, ratios to the MLPerf Tiny reference) -> bench/results.{json,md},
# bench/accuracy_vs_size.png and the README's Results block. Measures runs/real/<model> (or
# runs/ablation/tinyspeech_m_residual, or the shipped pretrained model); without REAL on the
# machine, nothing is scored and absent peers are listed as skipped. Extra `tinyspeech bench`
# options go in BENCH_ARGS (e.g. --train to train missing models, --models tinyspeech_m,ds_cnn).
BENCH_ARGS ?=

bench: $(STAMP)
	$(VENV)/bin/tinyspeech bench $(if $(wildcard $(REAL)),--data $(REAL)) $(BENCH_ARGS)

# Training cost as the dataset grows: a 105,000-clip archive in the official layout is built
# once in .cache/scale ($TINYSPEECH_CACHE/scale when set; about 3.4 GB) from the real and
# synthetic clips, then one epoch of TinySpeech-M at 10K, 40K and 105K clips ->
# bench/scale.{json,md} (peak RSS, clips/s, first batch).
bench-scale: $(STAMP)
	$(VENV)/bin/tinyspeech bench-scale --real $(REAL)

# Architecture search under deployment limits (optuna; see tinyspeech_tf/explore/) on REAL:
# EXPLORE_TRIALS trained architectures (infeasible samples are pruned before training and do
# not count) of EXPLORE_EPOCHS float + EXPLORE_QAT_EPOCHS QAT epochs each ->
# EXPLORE_OUT/pareto.{json,png} and specs/trial_<n>.json (train one for real with `tinyspeech
# train --spec`). Resumable: re-run to continue; more workers (here or on other machines, with
# a shared EXPLORE_STORAGE URL) just run the same command. Arena limits are measured on this
# 64-bit host, where the hand-built TinySpeech-M needs more than a board's 8 KB (its figure is
# in bench/results.md), hence 16 KB by default.
EXPLORE_OUT ?= runs/explore
EXPLORE_TRIALS ?= 40
EXPLORE_EPOCHS ?= 20
EXPLORE_QAT_EPOCHS ?= 5
EXPLORE_LIMITS ?= --max-params 15000 --max-bytes 16384 --max-arena 16384 --tflm-ops --no-batchnorm
EXPLORE_STORAGE ?=
EXPLORE_REFERENCE ?= runs/ablation/tinyspeech_m_residual
# Architectures queued before sampling (the sampler then models the space around them).
EXPLORE_START ?= tinyspeech_m
EXPLORE_ARGS ?=

explore: $(STAMP)
	$(VENV)/bin/tinyspeech explore --data $(REAL) --trials $(EXPLORE_TRIALS) \
		--epochs $(EXPLORE_EPOCHS) --qat-epochs $(EXPLORE_QAT_EPOCHS) --out $(EXPLORE_OUT) \
		$(EXPLORE_LIMITS) $(if $(EXPLORE_STORAGE),--storage $(EXPLORE_STORAGE)) \
		$(if $(wildcard $(EXPLORE_REFERENCE)/metrics.json),--reference $(EXPLORE_REFERENCE)) \
		$(foreach s,$(EXPLORE_START),--start-from $(s)) $(EXPLORE_ARGS)

# The search behind zoo.tinyspeech_m_arena8k: M's limits with an arena of at most 10,240 B on
# this 64-bit host (about 8 KB on a 32-bit board), started from designs under that limit (the
# last, the preset, is the search's best widened by hand) -> runs/explore_arena8k (same budget
# and reports as `make explore`).
ARENA8K_START := reports/specs/arena8k_two.json reports/specs/arena8k_one.json \
	reports/specs/arena8k_wide_head.json reports/specs/arena8k_wide.json

explore-arena8k: $(STAMP)
	$(MAKE) explore EXPLORE_OUT=runs/explore_arena8k EXPLORE_TRIALS=8 EXPLORE_REFERENCE= \
		EXPLORE_LIMITS="--max-params 15000 --max-bytes 16384 --max-arena 10240 --tflm-ops --no-batchnorm" \
		EXPLORE_START="$(ARENA8K_START)"

# TinySpeech-M's TFLM graph before and after its deployment forms (fused residual, A*S + 1
# and the global pool as depthwise convs), with the cheaper variants measured for a board's
# instruction budget (hard-sigmoid gate; the head conv at stride 2 in time, and in both axes),
# and the 8 KB-arena design, over SEEDS seeds of the real recipe: accuracy, bytes, arena,
# operators, host latency, estimated Cortex-M4 instructions -> reports/m_graph.{json,md}.
m-graph-report: $(STAMP)
	$(VENV)/bin/tinyspeech seeds reports/specs/m_plain.json tinyspeech_m \
		reports/specs/m_hard_gate.json reports/specs/m_head_s21.json \
		reports/specs/m_head_s2.json tinyspeech_m_arena8k --data $(REAL) --seeds $(SEEDS) \
		--runs runs/m_graph --report reports/m_graph

# Architectures compared over SEEDS training seeds by the real-data recipe (one run's accuracy
# moves by points with the seed): runs/seeds/<name>_seed<s> (finished runs are kept) ->
# reports/seeds.{json,md}. E.g. SEEDS_MODELS="tinyspeech_m runs/explore/specs/trial_12.json".
SEEDS ?= 3
SEEDS_MODELS ?= tinyspeech_m reports/specs/stem_m.json ds_cnn_m tinyspeech_x
SEEDS_ARGS ?=

seeds: $(STAMP)
	$(VENV)/bin/tinyspeech seeds $(SEEDS_MODELS) --data $(REAL) --seeds $(SEEDS) $(SEEDS_ARGS)

# How far the offline synthetic set carries to real speech: TinySpeech-M trained on it alone
# (what `make train` makes), on REAL alone and on both, each over 3 seeds and scored on REAL's
# validation speakers -> reports/synthetic.{json,md} (runs in runs/synthetic/, finished kept).
synthetic-report: $(STAMP)
	$(VENV)/bin/tinyspeech synthetic --real $(REAL)

# Flash-saving variants of TinySpeech-M (weight sharing, low rank, magnitude pruning), each
# trained by the real-data recipe into VARIANTS_DIR/<name> (finished ones are kept), then the
# TFLM LUT compression of M and of every variant (`tinyspeech compress`, VARIANT_BITS-bit;
# m_cluster4 is M trained with its big filters held on 2**VARIANT_BITS values, for lossless LUT);
# `make bench` gives each a row.
VARIANTS_DIR ?= runs/variants
VARIANT_BITS ?= 4
VARIANT_M_RUN ?= runs/ablation/tinyspeech_m_residual
TRAIN_VARIANT = $(VENV)/bin/tinyspeech train --model tinyspeech_m --data $(REAL) --recipe real \
	--out $(@D)
VARIANT_RUNS := $(addprefix $(VARIANTS_DIR)/,m_block m_emb10_shared m_lr4_all_shared m_lr8_head \
	m_lr4_head m_prune50 m_prune75 m_cluster4)

$(VARIANTS_DIR)/m_block/metrics.json: | $(STAMP)
	$(TRAIN_VARIANT) --model-arg share=block
$(VARIANTS_DIR)/m_emb10_shared/metrics.json: | $(STAMP)
	$(TRAIN_VARIANT) --model-arg 'embed_widths=[10,10,10]' --model-arg share=embedding
$(VARIANTS_DIR)/m_lr4_all_shared/metrics.json: | $(STAMP)
	$(TRAIN_VARIANT) --model-arg low_rank=4 --model-arg low_rank_share=true
$(VARIANTS_DIR)/m_lr8_head/metrics.json: | $(STAMP)
	$(TRAIN_VARIANT) --model-arg low_rank=8 --model-arg 'low_rank_layers=["head","dense"]'
$(VARIANTS_DIR)/m_lr4_head/metrics.json: | $(STAMP)
	$(TRAIN_VARIANT) --model-arg low_rank=4 --model-arg 'low_rank_layers=["head","dense"]'
$(VARIANTS_DIR)/m_prune50/metrics.json: | $(STAMP)
	$(TRAIN_VARIANT) --prune 0.5
$(VARIANTS_DIR)/m_prune75/metrics.json: | $(STAMP)
	$(TRAIN_VARIANT) --prune 0.75
$(VARIANTS_DIR)/m_cluster4/metrics.json: | $(STAMP)
	$(TRAIN_VARIANT) --cluster-bits $(VARIANT_BITS)

variants: $(addsuffix /metrics.json,$(VARIANT_RUNS))
	for run in $(VARIANT_M_RUN) $(VARIANT_RUNS); do \
		$(VENV)/bin/tinyspeech compress $$run --bits $(VARIANT_BITS) --data $(REAL) || exit 1; \
	done

clean:
	rm -rf build .pytest_cache
