# `make rehearse` and `make test` each install what they need first (scripts/setup.sh).
.PHONY: setup rehearse test lint

setup:
	./scripts/setup.sh

rehearse: setup
	venv/bin/python -m components.rehearse \
		--canary examples/podinfo/canary.yaml \
		--deployment examples/podinfo/deployment.yaml \
		--interval 2s --report rehearsal-report.json \
		--report-html rehearsal-report.html --report-png rehearsal-report.png

test: setup
	venv/bin/ruff check .
	venv/bin/ruff format --check .
	venv/bin/mypy components policies observability
	venv/bin/lint-imports
	# Most tests wait on release intervals, so four workers (a file each) share the machine;
	# the kill and fault sweeps then run alone, with nothing else timing their recoveries.
	venv/bin/pytest -q -n 4 --dist loadfile -m "not alone"
	venv/bin/pytest -q -m alone

lint: setup
	venv/bin/ruff check . && venv/bin/ruff format --check . && venv/bin/mypy components policies observability && venv/bin/lint-imports
