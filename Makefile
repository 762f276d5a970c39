# The two commands of the README's Quick start: `make demo` and `make test`.
.PHONY: demo test quick lint typecheck unit bench venv throughput

venv:
	@./scripts/bootstrap.sh

demo: venv
	.venv/bin/hewitt demo $(ARGS)

lint: venv
	.venv/bin/ruff check src tests examples benchmarks scripts
	.venv/bin/ruff format --check src tests examples benchmarks scripts

typecheck: venv
	.venv/bin/mypy

unit: venv
	.venv/bin/python -m pytest $(PYTEST_ARGS)

test: lint typecheck unit

# The suite without the Ray tests (they start a Ray cluster: about a minute).
quick: venv
	.venv/bin/python -m pytest -m "not ray" $(PYTEST_ARGS)

bench: venv
	.venv/bin/python -m benchmarks $(ARGS)

# Persisted events/s on SQLite or PostgreSQL (docs/persistence-backends.md):
# make throughput ARGS="sqlite --actors 1 1000"
throughput: venv
	.venv/bin/python -m tests.integration.persistence.throughput $(ARGS)
