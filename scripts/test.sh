#!/usr/bin/env bash
# The whole test suite, with all of its set-up: bash scripts/test.sh [pytest args]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
setup_base
# The store tests run against a throwaway PostgreSQL that the suite starts itself; media
# tests run Janus 1.4 (built once from Debian's source package) in a network namespace.
ensure_apt postgresql iproute2 iptables chromium ffmpeg fonts-noto-color-emoji libnss3-tools coturn
SUMMITRY_JANUS_BIN="$(bash "$REPO_ROOT/scripts/build-janus.sh" | tail -n 1)"
export SUMMITRY_JANUS_BIN
cd "$REPO_ROOT"
"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check --quiet .
"$VENV/bin/mypy"
"$VENV/bin/lint-imports" --no-cache

namespace="summitry-test"
bash scripts/netns.sh up "$namespace"
trap 'bash scripts/netns.sh down "$namespace"' EXIT
status=0
ip netns exec "$namespace" env SUMMITRY_MEDIA_ADDRESS=198.18.0.1 \
    "$VENV/bin/python" -m pytest "$@" || status=$?
exit "$status"
