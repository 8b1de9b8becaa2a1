#!/usr/bin/env bash
# Runs the product: summitry with its own Janus and a demo summit whose lobby is open.
# bash scripts/demo.sh [summitry demo args: --host --port --data-dir]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
setup_base
ensure_apt ffmpeg coturn
SUMMITRY_JANUS_BIN="$(bash "$REPO_ROOT/scripts/build-janus.sh" | tail -n 1)"
export SUMMITRY_JANUS_BIN
cd "$REPO_ROOT"
exec "$VENV/bin/summitry" demo "$@"
