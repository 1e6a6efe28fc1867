PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) examples/demo.py

# the Redis tests start their own servers unless .ci/run's services are up
test: $(STAMP)
	scripts/redis-services.sh install
	$(PY) -m pytest tests

test-fast: $(STAMP)
	$(PY) -m pytest -x -q tests -m "not slow"

bench: $(STAMP)
	$(PY) bench/convert_models.py --repeats 3
	$(PY) bench/lookup_throughput.py --keys 1000000
	$(PY) bench/model_throughput.py --repeats 10
	$(PY) bench/convert_throughput.py --size-gb 0.5

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
