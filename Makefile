# The two commands a newcomer needs: `make run` and `make test`. The rest are for developers.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
UV_REQUIREMENTS := deploy/image/uv-requirements.txt
PYTEST := $(BIN)/python -m pytest

.PHONY: install run test lint format unit integration e2e faults deploy-test schemas docs bench clean

install: $(VENV)/.installed

$(VENV)/.installed: uv.lock pyproject.toml shared/pyproject.toml $(wildcard services/*/pyproject.toml) $(UV_REQUIREMENTS)
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed (found " + sys.version.split()[0] + ")")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@# uv $(UV_VERSION), accepted only with one of the sha256 PyPI published (the image does the same)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes -r $(UV_REQUIREMENTS)
	@UV_PROJECT_ENVIRONMENT=$(VENV) $(BIN)/uv sync --frozen --all-packages --quiet
	@touch $@

run: install ## start the four services, a development mail catcher (var/mail/) and nothing else
	@$(BIN)/python devtools/run.py

test: install lint ## everything but the fault suite: lint, unit, integration, end-to-end, browser
	$(PYTEST) tests --ignore=tests/faults

unit: install
	$(PYTEST) tests/unit

integration: install
	$(PYTEST) tests/integration

e2e: install
	$(PYTEST) tests/e2e

faults: install ## break the running system (broker, database, SMTP, processes) and print the table
	$(PYTEST) tests/faults -m faults

deploy-test: install ## build the image and carry one invitation through the compose stack (needs Docker)
	$(PYTEST) -rs tests/deploy/test_containers.py

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy shared/src services/*/src devtools tests
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

schemas: install ## write the JSON Schema of every event under docs/schemas/
	$(BIN)/python -m onboarding_shared.contract.schemas docs/schemas

docs: schemas ## also write docs/asyncapi.json: every service's events, as AsyncAPI 3.0
	$(BIN)/python -m onboarding_shared.contract.asyncapi docs/asyncapi.json \
		users.bootstrap invitations.bootstrap mailer.bootstrap auth_listener.bootstrap

bench: install ## print throughput figures measured against the local broker and database
	$(BIN)/python devtools/bench.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
