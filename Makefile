PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PYTHONHASHSEED := 0
export TF_CPP_MIN_LOG_LEVEL := 2

.PHONY: demo test install clean bench

$(STAMP): pyproject.toml requirements-nodeps.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e '.[all]'
	$(BIN)/python -m pip install --no-deps -r requirements-nodeps.txt
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/edgeport demo --outdir demo_out --force

test: $(STAMP)
	tools/ensure-chromium.sh
	tools/ensure-postgresql.sh
	EDGEPORT_REQUIRE_CHROMIUM=1 EDGEPORT_REQUIRE_POSTGRESQL=1 $(BIN)/python -m pytest -n 2 --dist loadgroup --durations=30 tests

bench: $(STAMP)
	$(BIN)/python benchmarks/export_geo.py

clean:
	rm -rf $(VENV) demo_out .pytest_cache
