# One-command install, demo and tests. Every target is idempotent: the venv is (re)built only when
# pyproject.toml changes.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo lint test test-all test-fast mutation-check regress gpu-check clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# torch first, pinned: this release's CPU wheel is the one intended here; any other torch
	# request would pull a multi-GB CUDA build. Users with a GPU may install a CUDA torch instead.
	$(BIN)/pip install --quiet torch==2.13.0
	# the optional launchers too, so the tests run a real Ray instance and submitit's local executor
	$(BIN)/pip install --quiet -e '.[test,ray,slurm,video,track]'
	touch $(STAMP)

# The paper's main comparison at CPU scale: SOM, SAC and MFP on Hopper-v4 (a Table 1 task) for 8,000 env steps
# per seed (1/625 of the paper's 5M), 2 seeds in parallel, each with its `demo` preset (Table 3 scaled to this
# budget; the reasons are written beside the presets), stored as the `demo` variant in DEMO_RESULTS; then their
# Table 1 (Normalized: 0 = the random policy, 1 = the paper's best Hopper-v4 mean) and Table 2 (one update at the
# paper's config, 3 repeats), each with --paper. 4 min 19 s on 2 idle CPU cores (fresh clone, venv built); a rerun skips finished seeds.
DEMO_RESULTS ?= results
DEMO_RUN = $(BIN)/sombench run --env Hopper-v4 --steps 8000 --seeds 2 --workers 2 --eval-every 2000 \
	--eval-episodes 5 --preset demo --tag demo --results $(DEMO_RESULTS)
demo: install
	$(DEMO_RUN) --algo som
	$(DEMO_RUN) --algo sac
	$(DEMO_RUN) --algo mfp
	$(BIN)/sombench table --results $(DEMO_RESULTS) --envs Hopper-v4 --algos som@demo,sac@demo,mfp@demo \
		--paper --norm-ref fixed
	$(BIN)/sombench latency --results $(DEMO_RESULTS) --algos som,sac,mfp --repeats 3 --paper

# ruff (pyflakes and a complexity limit of 15) and import-linter (the layers in pyproject.toml)
lint: install
	$(BIN)/ruff check sombench algorithms tests labs scripts
	$(BIN)/lint-imports

# CI's tests (under 45 minutes with the regress suite): everything but the tests marked `full`
test: install lint
	$(BIN)/python -m pytest -q -m "not full"

# every test, `full` included (about an hour and a half on 2 cores): run it before landing a change to an
# algorithm or to a learning test
test-all: install lint
	$(BIN)/python -m pytest -q

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow and not full"

# Named semantic faults (the max instead of the min over the target critics, a dropped terminal mask, a
# removed gradient clip, ...) applied one at a time to a scratch copy of the tree; each must make the fast tests
# fail. Exit 1 on a survivor or on a mutation whose code snippet no longer exists (scripts/mutation_check.py).
mutation-check: install
	$(BIN)/python scripts/mutation_check.py --markdown docs/mutation-check.md

# Small-budget runs of every algorithm against the bands in sombench/data/regress/bands.json (~10 min, 2 cores).
regress: install
	$(BIN)/sombench regress --suite ci

# On a machine with a CUDA GPU, in under 8 minutes: the `cuda` tests, Table 2 on the GPU (eager and compiled),
# SOM and SAC side by side on Hopper-v4 for a fixed window; everything in GPU_CHECK_OUT (default $OUT, else
# gpu-check/). Without a GPU it says so and exits 0. No `install` prerequisite: a GPU machine may have no
# registry to build the venv from; the script picks an interpreter with a CUDA torch (scripts/gpu_check.py).
GPU_CHECK_OUT ?=
gpu-check:
	$(PYTHON) scripts/gpu_check.py $(GPU_CHECK_OUT)

clean:
	rm -rf $(VENV) .pytest_cache
