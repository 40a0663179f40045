# make demo: set up, then create a kernel from the current Python and run code in it.
# make test: set up, then run the whole test suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
WHEELHOUSE := build/wheelhouse

.PHONY: demo test setup wheelhouse chromium bench clean

setup: $(BIN)/kernelctl

$(BIN)/kernelctl: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

# ipykernel and its dependencies as wheels: tests and benchmarks install offline from here.
wheelhouse: $(WHEELHOUSE)/.done
$(WHEELHOUSE)/.done: $(BIN)/kernelctl
	$(BIN)/pip download --quiet --dest $(WHEELHOUSE) \
	  "ipykernel==$$($(BIN)/python -c 'import ipykernel; print(ipykernel.__version__)')"
	touch $@

# Debian's chromium for the JupyterLab browser tests (never a browser download).
chromium:
	@command -v chromium >/dev/null || { \
	  [ "$$(id -u)" = 0 ] || { echo "install Debian's chromium (apt-get install chromium)"; exit 1; }; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

test: setup wheelhouse chromium
	$(BIN)/python -m pytest -q

demo: setup wheelhouse
	$(BIN)/python -m kernelctl create --base system --name kernelctl-demo --force \
	  --no-index --find-links $(WHEELHOUSE)
	$(BIN)/kernelctl list
	$(BIN)/python tests/demo_kernel.py kernelctl-demo

bench: setup wheelhouse
	$(BIN)/python bench/bench_create.py
	$(BIN)/python bench/bench_list.py
	$(BIN)/python bench/bench_kernel_start.py
	$(BIN)/python bench/bench_doctor.py

clean:
	rm -rf $(VENV) build
