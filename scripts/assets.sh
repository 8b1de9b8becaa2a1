#!/usr/bin/env bash
# Idempotent: the pages' front-end libraries from npm (package.json, package-lock.json)
# into src/summitry/web/static/vendor/. node_modules/ and vendor/ are not committed.
# Runs `npm ci` only when node_modules/ is missing or older than the lock file.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENDOR="$REPO_ROOT/src/summitry/web/static/vendor"
STAMP="$REPO_ROOT/node_modules/.summitry-lock-sha256"
# What the public page loads: hls.js, and its transmuxer as a same-origin worker file
# (hls.js would otherwise make the worker from a blob: URL, which the CSP forbids).
FILES=(hls.js/dist/hls.min.js hls.js/dist/hls.worker.js)

say() { printf 'assets: %s\n' "$*" >&2; }

if ! command -v npm >/dev/null 2>&1; then
    say "npm is not installed: install Node.js 20 with npm (Debian: apt-get install nodejs npm)"
    exit 1
fi

want="$(cat "$REPO_ROOT/package.json" "$REPO_ROOT/package-lock.json" | sha256sum | cut -d' ' -f1)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$want" ]; then
    say "installing npm packages (npm ci)"
    (cd "$REPO_ROOT" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2) \
        || { say "npm ci failed (is the npm registry reachable?)"; exit 1; }
    echo "$want" > "$STAMP"
fi

mkdir -p "$VENDOR"
for file in "${FILES[@]}"; do
    source="$REPO_ROOT/node_modules/$file"
    target="$VENDOR/$(basename "$file")"
    [ -f "$source" ] || { say "missing $file after npm ci"; exit 1; }
    if ! cmp -s "$source" "$target"; then
        say "copying $file to static/vendor/"
        cp "$source" "$target.tmp" && mv "$target.tmp" "$target"
    fi
done
say "front-end assets ready ($(node -p "require('$REPO_ROOT/node_modules/hls.js/package.json').version" 2>/dev/null || echo '?'))"
