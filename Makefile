# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# pytest-xdist workers of `make test` (a test file stays on one worker, sharing its module fixtures)
TEST_WORKERS ?= 2

.PHONY: demo test test-lowest lint install lock clean

$(PY):
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# The exact set verified together (constraints.txt) within pyproject's ranges. torch first, the CPU
# build on this machine's disk, so stable-baselines3 never pulls a multi-GB CUDA build.
LOCK := constraints.txt
$(STAMP): pyproject.toml $(LOCK) | $(PY)
	$(PY) -m pip install --quiet -c $(LOCK) torch==2.13.0
	$(PY) -m pip install --quiet -c $(LOCK) -e ".[dev,rllib]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m qin_env.bench.demo

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile

# After a verified upgrade inside pyproject's ranges: record the installed set as the new lock.
lock: $(STAMP)
	{ head -2 $(LOCK); $(PY) -m pip freeze --exclude-editable; } > $(LOCK).new && mv $(LOCK).new $(LOCK)

# The environment's tests on the lowest supported versions of its own dependencies (constraints-lowest.txt),
# in a second virtualenv without extras; tests/physics/test_circuits.py needs PennyLane (the `agents` extra) and stays out.
LOW := .venv-lowest
test-lowest:
	test -x $(LOW)/bin/python || $(PYTHON) -m venv $(LOW) || python3 -m venv $(LOW)
	$(LOW)/bin/python -m pip install --quiet -r constraints-lowest.txt
	$(LOW)/bin/python -m pip install --quiet --no-deps -e .
	$(LOW)/bin/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile -p no:cacheprovider \
		tests/test_pettingzoo_face.py tests/test_env_registry.py tests/env tests/physics \
		--ignore tests/physics/test_circuits.py

lint: $(STAMP)
	$(PY) -m ruff check .

clean:
	rm -rf $(VENV) $(LOW) build *.egg-info
