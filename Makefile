# The README's two commands: `make quickstart` (the main job) and `make test`.
# Both build .venv from the hashed requirements.lock first when needed. Only `uv` is assumed
# (`pip install uv` if missing). No network access is needed beyond the package registry.
# The Dockerfile runs these same targets (`make deps`, then `make venv`), so images and tests
# install the same way.
PYTHON_VERSION ?= 3.11
VENV ?= .venv
PY := $(VENV)/bin/python
DEPS_STAMP := $(VENV)/.deps
STAMP := $(VENV)/.synced
PYTEST_ARGS ?=

.PHONY: deps venv test quickstart lock clean

# Third-party dependencies only, exactly as pinned (cacheable apart from the project's sources).
deps: $(DEPS_STAMP)
$(DEPS_STAMP): requirements.lock
	uv venv --allow-existing -p $(PYTHON_VERSION) $(VENV)
	uv pip sync -p $(PY) requirements.lock
	@touch $@

# Plus this project and the edge package (export/), editable, without dependencies. Built with the lock's
# setuptools (--no-build-isolation): nothing is resolved outside the hashed lock.
venv: $(STAMP)
$(STAMP): $(DEPS_STAMP) pyproject.toml export/pyproject.toml
	uv pip install -p $(PY) --no-deps --no-build-isolation -e . -e ./export
	@touch $@

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

quickstart: $(STAMP)
	$(VENV)/bin/admd-deploy quickstart

# Re-pin every dependency (hashes, no index URLs) after editing a pyproject.toml. admd-edge is this workspace's
# export/ (installed by `venv`, never from an index), so the lock holds its dependencies but not itself.
lock:
	uv pip compile pyproject.toml --extra dev --generate-hashes --no-emit-package admd-edge -p $(PYTHON_VERSION) \
		-o requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache
