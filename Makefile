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
	$(BIN)/nlp-ssl train-tokenizer configs/quickstart/tokenizer.yaml
	$(BIN)/nlp-ssl prepare configs/quickstart/prepare.yaml
	$(BIN)/nlp-ssl pretrain configs/quickstart/pretrain.yaml
	$(BIN)/python scripts/fill_mask.py runs/quickstart/encoder
	$(BIN)/nlp-ssl finetune configs/quickstart/finetune.yaml
	$(BIN)/nlp-ssl finetune configs/quickstart/finetune-qa.yaml
	$(BIN)/nlp-ssl answer runs/quickstart/squad --question "What does the encoder learn from?" \
	  --context "The encoder learns from unlabelled text, then a few labels teach it the task."
	$(BIN)/nlp-ssl push runs/quickstart/sst2 --repo-id me/sst2-tiny --dry-run
	$(BIN)/nlp-ssl report runs/quickstart --output runs/quickstart/report --title "nlp-ssl quickstart"

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
