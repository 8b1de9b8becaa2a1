#!/usr/bin/env bash
# Idempotent set-up shared by the README's two commands: Debian packages that are
# missing, the virtualenv at .venv from requirements.lock, and the project itself.
# Sourced by scripts/demo.sh and scripts/test.sh; safe to run on its own.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$REPO_ROOT/.venv"
UV_VERSION="0.13.9"

say() { printf 'setup: %s\n' "$*" >&2; }

apt_updated=0
ensure_apt() {
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        say "missing Debian packages: ${missing[*]} (run as root, or install them)"; return 1
    fi
    say "installing Debian packages: ${missing[*]}"
    if [ "$apt_updated" -eq 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || { say "apt-get update failed"; return 1; }
        apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 \
        || { say "could not install: ${missing[*]}"; return 1; }
}

find_python() {
    local candidate
    for candidate in python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1 \
            && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
            command -v "$candidate"; return 0
        fi
    done
    say "Python 3.11 is required (python3.11 not found)"; return 1
}

ensure_venv() {
    local stamp="$VENV/.summitry-lock-sha256" want
    want="$(sha256sum "$REPO_ROOT/requirements.lock" "$REPO_ROOT/pyproject.toml" | sha256sum | cut -d' ' -f1)"
    if [ -x "$VENV/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        return 0
    fi
    local python; python="$(find_python)"
    [ -x "$VENV/bin/python" ] || { say "creating virtualenv at .venv"; "$python" -m venv "$VENV"; }
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check "uv==$UV_VERSION" >&2
    say "installing locked dependencies"
    "$VENV/bin/uv" pip sync -q --python "$VENV/bin/python" "$REPO_ROOT/requirements.lock" >&2
    "$VENV/bin/uv" pip install -q --python "$VENV/bin/python" --no-deps -e "$REPO_ROOT" >&2
    echo "$want" > "$stamp"
}

setup_base() {
    ensure_apt ca-certificates
    command -v npm >/dev/null 2>&1 || ensure_apt nodejs npm
    ensure_venv
    bash "$REPO_ROOT/scripts/assets.sh"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    setup_base
fi
