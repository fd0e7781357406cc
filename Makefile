# nlp-ssl: `make quickstart` runs the main job, `make test` the test suite; both set everything up first.
VENV ?= .venv
BIN := $(VENV)/bin
# Relative data paths in configs/ resolve against this directory (the shared real data sets).
export NLP_SSL_DATA_DIR ?= $(abspath ../shared/data)

.PHONY: setup quickstart test test-slow test-all bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml requirements/constraints.txt scripts/setup.sh
	scripts/setup.sh $(VENV)
	touch $@

quickstart: setup
	scripts/quickstart.sh $(BIN)

test: setup
	$(BIN)/python -m pytest -q -m "not slow"

# The long tests (two accelerate ranks, real wall-clock budgets), left out of `make test`.
test-slow: setup
	$(BIN)/python -m pytest -q -m slow

test-all: setup
	$(BIN)/python -m pytest -q

bench: setup  # the speed benchmarks (hours; an idle machine); the pay-off studies: benchmarks/payoff.py
	$(BIN)/python benchmarks/bench_prepare.py --tokenizer
	$(BIN)/python benchmarks/bench_prepare.py
	$(BIN)/python benchmarks/bench_prepare.py --scaling
	$(BIN)/python benchmarks/bench_pretrain.py --vocab 8192,30522
	$(BIN)/python benchmarks/bench_pretrain.py --grid
	$(BIN)/python benchmarks/bench_pretrain.py --quality
	$(BIN)/python benchmarks/bench_finetune.py
	$(BIN)/python benchmarks/tables.py

clean:
	rm -rf runs .pytest_cache
