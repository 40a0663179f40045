# make demo: set up, then create a kernel from the current Python and run code in it.
# make test: set up, then run the whole test suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
WHEELHOUSE := build/wheelhouse

.PHONY: demo test setup wheelhouse system-packages bench clean

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

# Debian packages the tests drive for real: chromium (JupyterLab in a browser; never a
# browser download) and Slurm (srun, sbatch).
system-packages:
	@command -v chromium >/dev/null && command -v slurmd >/dev/null || { \
	  [ "$$(id -u)" = 0 ] || { echo "as root: apt-get install chromium slurm-wlm"; exit 1; }; \
	  apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium slurm-wlm; }

test: setup wheelhouse system-packages
	$(BIN)/python -m mypy
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
