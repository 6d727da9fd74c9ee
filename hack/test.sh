#!/bin/sh
# The whole test suite, as CI runs it: setup, static checks, unit and integration tests.
# Run as root on Debian 12. Extra arguments go to pytest.
set -eu
cd "$(dirname "$0")/.."
hack/setup.sh
. .venv/bin/activate
echo "== ruff check"; ruff check .
echo "== ruff format --check"; ruff format --check .
echo "== mypy --strict ocirt"; mypy --strict ocirt
echo "== pytest"; exec python -m pytest -q -p no:cacheprovider "$@"
