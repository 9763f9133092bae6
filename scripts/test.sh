#!/usr/bin/env bash
# Set up if needed, then the house checks: ruff, mypy --strict, the test suite.
# Extra arguments go to pytest, e.g. scripts/test.sh -k resolve
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

echo "== ruff check"
.venv/bin/ruff check src tests bench
echo "== mypy --strict"
.venv/bin/mypy --strict src bench
echo "== lint-imports (the import contract: docs/architecture.md)"
.venv/bin/lint-imports --no-logo --no-cache  # ~0.3 s: no cache directory in the tree
echo "== pytest"
# loadfile: a file's tests share one worker, in order, with one module-scoped lab each
.venv/bin/pytest -n auto --dist loadfile -p no:cacheprovider "$@"
