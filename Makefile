# remotegrad: one entry point for the common jobs.
#   make demo   fresh venv → local cluster → the seed tutorial through it → cluster down
#   make test   the test suite (starts its own redis-server, gateway and workers)

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PORT   ?= 50051

.PHONY: venv demo test lint proto clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

venv: $(PY)
	$(PY) -m pip install -q -e ".[test,load]"

demo: venv
	PY=$(PY) PORT=$(PORT) bash scripts/demo.sh

test: venv
	$(PY) -m pytest -q

lint: venv
	$(VENV)/bin/ruff check client server worker proto tests bench loadtest examples scripts

proto: venv
	$(PY) scripts/gen_proto.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
