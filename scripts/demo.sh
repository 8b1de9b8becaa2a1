#!/usr/bin/env bash
# Runs the product with a demo summit: bash scripts/demo.sh [summitry demo args]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
setup_base
cd "$REPO_ROOT"
exec "$VENV/bin/summitry" demo "$@"
