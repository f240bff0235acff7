# rigkit: the two set-up commands are `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# llama.cpp's server is built once, outside the repository, and reused.
LLAMA_CACHE ?= $(HOME)/.cache/rigkit/llama.cpp
LLAMA_SERVER := $(LLAMA_CACHE)/bin/llama-server
DEMO_OUT ?= out/reference

.PHONY: demo test lint typecheck fmt venv llama-server clean bench

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m compileall -q src >/dev/null
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/rigkit plan examples/reference-4x4090.yaml --out $(DEMO_OUT) --force || test $$? -eq 1

llama-server: $(STAMP)
	LLAMA_CACHE=$(LLAMA_CACHE) $(PY) scripts/build_llama_server.py

# The end-to-end tests need llama-server; without a C++ compiler they are skipped with the reason.
test: $(STAMP)
	@$(MAKE) --no-print-directory llama-server || echo "warning: llama-server could not be built; its end-to-end tests will be skipped"
	RIGKIT_LLAMA_SERVER=$(LLAMA_SERVER) $(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks scripts
	$(VENV)/bin/mypy

fmt: $(STAMP)
	$(VENV)/bin/ruff format src tests benchmarks scripts
	$(VENV)/bin/ruff check --fix src tests benchmarks scripts

bench: $(STAMP)
	$(PY) -m compileall -q src >/dev/null
	for f in benchmarks/*.py; do $(PY) $$f || exit 1; done

clean:
	rm -rf $(VENV) out .pytest_cache .mypy_cache .ruff_cache
