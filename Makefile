# The two commands: `make run` and `make test`. Each installs whatever is missing first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
PYTEST_ARGS ?=
# The suite in parallel (pytest-xdist): 3 workers, tests that share a module's fixture or must run
# in order kept together (tests/conftest.py); `make test PYTEST_PARALLEL=` runs it serially.
PYTEST_PARALLEL ?= -n 3 --dist loadgroup --durations=20

.PHONY: run test deps contracts bench clean-state check-artifacts

run: deps
	$(VENV)/bin/ledger up --demo

test: deps
	$(VENV)/bin/lint-imports
	@url=$$(scripts/test-postgres.sh start) && \
	  echo "PostgreSQL for tests: $$url" && \
	  hsm=$$(scripts/test-softhsm.sh) && echo "SoftHSM2 for tests: $$hsm" && \
	  chromium=$$(scripts/test-chromium.sh) && echo "Chromium for the console tests: $$chromium" && \
	  LEDGER_TEST_DATABASE_URL="$$url" LEDGER_TEST_HSM_MODULE="$$hsm" LEDGER_TEST_CHROMIUM="$$chromium" \
	  $(PY) -m pytest $(PYTEST_PARALLEL) $(PYTEST_ARGS)

deps: $(VENV)/.installed node_modules/.installed contracts

# The virtualenv, re-installed when a pyproject.toml changes: the service and, beside it, the
# auditor's standalone package (ledger-anchors), which the service uses.
$(VENV)/.installed: pyproject.toml ledger-anchors/pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e ./ledger-anchors -e '.[test]'
	@touch $@

# Pinned npm packages: anvil (+ its platform binary), solc-js, OpenZeppelin Contracts, merkle-tree.
node_modules/.installed: package.json package-lock.json scripts/install-node-deps.sh
	scripts/install-node-deps.sh
	@touch $@

# Contract artifacts ship in the package; rebuilt only when the sources changed.
contracts: $(VENV)/.installed node_modules/.installed
	$(PY) scripts/compile_contracts.py --if-stale

check-artifacts: deps
	$(PY) scripts/compile_contracts.py --check

bench: deps
	$(PY) -m bench.run_all

clean-state:
	rm -rf .ledger
