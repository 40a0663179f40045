# make demo: set up, then create a kernel from the current Python and run code in it.
# make test: set up, then run the whole test suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
WHEELHOUSE := build/wheelhouse

# Other Pythons (pyenv's, or pythonX.Y on PATH, where the machine has them): kernelctl
# itself is tested on the oldest and newest it claims, and each 3.9-3.13 as a base.
PYENV_VERSIONS := $(or $(PYENV_ROOT),$(HOME)/.pyenv)/versions
python_for = $(firstword $(wildcard $(PYENV_VERSIONS)/$(1).*/bin/python$(1)) \
                         $(shell command -v python$(1) 2>/dev/null))
found = $(foreach v,$(1),$(if $(call python_for,$(v)),$(v)))
BASE_VERSIONS := $(call found,3.9 3.10 3.11 3.12 3.13)
OWN_VERSIONS := $(call found,3.9 3.13)
# What runs on those Pythons: kernelctl's own code paths (the browser, Slurm and
# fault-injection suites run once, on the default Python).
PORTABLE_TESTS := tests/test_parsers.py tests/test_create.py tests/test_list.py \
                  tests/test_remove.py tests/test_install.py tests/test_json.py

.PHONY: demo test setup wheelhouse wheelhouses system-packages bench clean test-pythons lab-loop labextension hub

setup: $(BIN)/kernelctl

$(BIN)/kernelctl: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

# ipykernel and its dependencies as wheels: tests and benchmarks install offline from here
# (ipyparallel too, for the engines tests).
wheelhouse: $(WHEELHOUSE)/.done
$(WHEELHOUSE)/.done: $(BIN)/kernelctl
	$(BIN)/pip download --quiet --dest $(WHEELHOUSE) ipyparallel \
	  "ipykernel==$$($(BIN)/python -c 'import ipykernel; print(ipykernel.__version__)')"
	touch $@

# ipykernel for each base Python, downloaded by that Python (pip's --python-version
# would judge environment markers with the wrong Python).
wheelhouses: $(foreach v,$(BASE_VERSIONS),build/wheelhouse-$(v)/.done)
build/wheelhouse-%/.done:
	$(call python_for,$*) -m pip download --quiet --disable-pip-version-check \
	  --dest build/wheelhouse-$* ipykernel
	touch $@

build/venv-%/.done: pyproject.toml
	$(call python_for,$*) -m venv build/venv-$*
	build/venv-$*/bin/pip install --quiet --disable-pip-version-check -e . pytest
	touch $@

test-pythons: wheelhouses $(foreach v,$(OWN_VERSIONS),build/venv-$(v)/.done)
	@for v in $(OWN_VERSIONS); do echo "== kernelctl on Python $$v"; \
	  KERNELCTL_TEST_WHEELHOUSE=build/wheelhouse-$$v build/venv-$$v/bin/python -m pytest -q \
	    -p no:cacheprovider $(PORTABLE_TESTS) || exit 1; done

# Debian packages the tests drive for real: chromium (JupyterLab in a browser; never a
# browser download), Slurm (srun, sbatch), Lmod (module bases), shellcheck and dash (every
# script kernelctl writes is checked by both), sudo (JupyterHub submits as the user) and
# python3 (the hub user's server runs on it: the tests' own Python is under /root).
system-packages:
	@command -v chromium >/dev/null && command -v slurmd >/dev/null && \
	  command -v shellcheck >/dev/null && command -v dash >/dev/null && \
	  command -v sudo >/dev/null && [ -x /usr/bin/python3 ] && \
	  [ -x /usr/share/lmod/lmod/libexec/lmod ] || { \
	  [ "$$(id -u)" = 0 ] || { echo "as root: apt-get install chromium slurm-wlm lmod shellcheck dash sudo python3"; exit 1; }; \
	  apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium slurm-wlm lmod shellcheck dash sudo python3; }

test: setup wheelhouse wheelhouses system-packages labextension hub
	$(BIN)/python -m mypy
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest -q
	$(MAKE) --no-print-directory test-pythons

demo: setup wheelhouse
	$(BIN)/python -m kernelctl create --base system --name kernelctl-demo --force \
	  --no-index --find-links $(WHEELHOUSE)
	$(BIN)/kernelctl list
	$(BIN)/python tests/demo_kernel.py kernelctl-demo

# numpy, pandas, matplotlib and ipykernel as wheels, for bench_install (one download).
build/wheelhouse-sci/.done: $(BIN)/kernelctl
	$(BIN)/pip download --quiet --dest build/wheelhouse-sci ipykernel numpy pandas matplotlib
	touch $@

bench: setup wheelhouse build/wheelhouse-sci/.done
	$(BIN)/python bench/bench_create.py
	$(BIN)/python bench/bench_install.py
	$(BIN)/python bench/bench_startup.py
	$(BIN)/python bench/bench_list.py
	$(BIN)/python bench/bench_kernel_start.py
	$(BIN)/python bench/bench_base_start.py
	$(BIN)/python bench/bench_doctor.py
	$(BIN)/python bench/bench_slurm_kernel.py

# The browser and REST tests 20 times in a row: how they were shown not to be flaky.
lab-loop: setup wheelhouse system-packages
	@for i in $$(seq 1 20); do $(BIN)/python -m pytest -q -p no:cacheprovider \
	  tests/test_jupyterlab.py > build/lab-loop.log 2>&1 || { tail -40 build/lab-loop.log; \
	  echo "run $$i failed (build/lab-loop.log; the server's log is quoted)"; exit 1; }; \
	  echo "run $$i: $$(tail -1 build/lab-loop.log)"; done

# The demo's kernel and environment live in the user's real Jupyter and kernelctl dirs.
clean:
	-@[ -x $(BIN)/kernelctl ] && $(BIN)/kernelctl remove kernelctl-demo --yes 2>/dev/null || true
	rm -rf $(VENV) build

# The Kernels panel's bundle (kernelctl/labextension, committed: installing kernelctl needs
# no Node.js), rebuilt from labextension/src with Node.js and the npm registry.
labextension: setup
	cd labextension && npm ci --no-audit --no-fund && npx tsc && \
	  npx build-labextension --core-path "$$($(abspath $(BIN))/python -c 'import jupyterlab, os; print(os.path.join(os.path.dirname(jupyterlab.__file__), "staging"))')" .
	$(BIN)/pip install --quiet -e '.[test]'

# The hub fixture (tests/hub.py): JupyterHub's proxy (npm), and the server environment of
# its unprivileged user (Debian's python3 with JupyterLab, JupyterHub, batchspawner and
# this checkout's kernelctl, installed by uv).
hub: build/hub-proxy/.done build/hub-user-venv/.done
build/hub-proxy/.done:
	mkdir -p build/hub-proxy
	cd build/hub-proxy && npm install --no-audit --no-fund --prefix . configurable-http-proxy@5
	touch $@
build/hub-user-venv/.done: pyproject.toml | setup system-packages
	rm -rf build/hub-user-venv
	$(BIN)/uv venv --quiet --python /usr/bin/python3 build/hub-user-venv
	$(BIN)/uv pip install --quiet --python build/hub-user-venv/bin/python -e . jupyterlab \
	  jupyterhub batchspawner
	touch $@
