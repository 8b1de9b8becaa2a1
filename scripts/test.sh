#!/usr/bin/env bash
# The whole test suite, with all of its set-up: bash scripts/test.sh [pytest args]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
setup_base
# The store tests run against a throwaway PostgreSQL that the suite starts itself.
ensure_apt postgresql
cd "$REPO_ROOT"
"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check --quiet .
"$VENV/bin/mypy"
exec "$VENV/bin/python" -m pytest "$@"
