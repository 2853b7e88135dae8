# The README's two commands: `make quickstart` (the main job) and `make test`.
# Both build .venv from the hashed requirements.lock first when needed. Only `uv` is assumed
# (`pip install uv` if missing). No network access is needed beyond the package registry.
PYTHON_VERSION ?= 3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.synced
PYTEST_ARGS ?=

.PHONY: venv test quickstart lock clean

venv: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	uv venv --allow-existing -p $(PYTHON_VERSION) $(VENV)
	uv pip sync -p $(PY) requirements.lock
	uv pip install -p $(PY) --no-deps -e .
	@touch $@

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

quickstart: $(STAMP)
	$(VENV)/bin/admd-deploy demo

# Re-pin every dependency (hashes, no index URLs) after editing pyproject.toml.
lock:
	uv pip compile pyproject.toml --extra dev --generate-hashes -p $(PYTHON_VERSION) -o requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache
