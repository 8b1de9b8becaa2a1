#!/usr/bin/env bash
# Build (once) and cache Janus >= 1.4 from Debian's own `sid` source package.
#
# Debian 12 ships Janus 1.1.2, which is too old for summitry (no client offers in
# Streaming, no e2ee signalling to subscribers); see MEDIA-NOTES.md "Which Janus".
# This script compiles the `sid` source package (1.4.x) against Debian 12's
# libraries, without touching the system's apt sources, into a cache prefix:
#
#   PREFIX=${SUMMITRY_JANUS_PREFIX:-${XDG_CACHE_HOME:-$HOME/.cache}/summitry/janus-1.4}
#
# Usage:   JANUS_BIN=$(scripts/build-janus.sh | tail -1)
#
# stdout:  only the absolute path of the janus binary to use (last line).
# stderr:  progress, timings, and on failure what went wrong (+ build log tail).
# Exit 0 at once when $PREFIX/bin/janus or a `janus` on PATH reports >= 1400.
#
# Layout after a build:
#   $PREFIX/bin/janus
#   $PREFIX/lib/janus/plugins/     libjanus_{videoroom,streaming,echotest}.so
#   $PREFIX/lib/janus/transports/  libjanus_{http,websockets}.so
#   $PREFIX/etc/janus/             sample configs (*.jcfg.sample)
#
# Environment:
#   SUMMITRY_JANUS_PREFIX   install prefix (see above)
#   SUMMITRY_JANUS_JOBS     make -j value (default 2)
#   SUMMITRY_JANUS_MIRROR   Debian mirror for the sid deb-src line (default: the system's)
#   SUMMITRY_JANUS_NO_SYSTEM=1  ignore a `janus` on PATH, always use/build the cache
set -euo pipefail

MIN_VERSION=1400
PREFIX=${SUMMITRY_JANUS_PREFIX:-${XDG_CACHE_HOME:-$HOME/.cache}/summitry/janus-1.4}
JOBS=${SUMMITRY_JANUS_JOBS:-2}
DEB_SRC_PACKAGE=janus
DEB_SUITE=sid
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
APT_PACKAGES=(build-essential pkg-config automake libtool dpkg-dev libssl-dev
  libglib2.0-dev libmicrohttpd-dev libjansson-dev libnice-dev libsrtp2-dev
  libconfig-dev libwebsockets-dev)

log() { printf 'janus: %s\n' "$*" >&2; }
die() { printf 'janus: ERROR: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- version check
# `janus --version` prints e.g. "Janus version: 1401 (1.4.1)"; fall back to x.y.z.
janus_version() { # <binary> -> prints the numeric version (e.g. 1401) or nothing
  local out num
  out=$(timeout 10 "$1" --version 2>/dev/null) || true
  num=$(grep -oiE 'version:?[[:space:]]*[0-9]{3,}' <<<"$out" | grep -oE '[0-9]+$' | head -1) || true
  if [[ -z $num ]]; then
    num=$(grep -oE '\b[0-9]+\.[0-9]+\.[0-9]+' <<<"$out" | head -1 |
      awk -F. '{ printf "%d", $1 * 1000 + $2 * 100 + $3 }') || true
  fi
  printf '%s' "$num"
}
janus_version_text() { # <binary> -> "1401 (1.4.1)" or similar, for messages
  local out
  out=$(timeout 10 "$1" --version 2>/dev/null) || true
  grep -oiE 'version:?[[:space:]]*[0-9]+([[:space:]]*\([^)]*\))?' <<<"$out" | head -1 |
    sed -E 's/^[Vv]ersion:?[[:space:]]*//' || true
}
good_janus() { # <binary> -> true when executable and >= MIN_VERSION
  [[ -x $1 ]] || return 1
  local v; v=$(janus_version "$1")
  [[ -n $v && $v -ge $MIN_VERSION ]]
}

if good_janus "$PREFIX/bin/janus"; then
  log "cached at $PREFIX (version $(janus_version_text "$PREFIX/bin/janus"))"
  printf '%s\n' "$PREFIX/bin/janus"
  exit 0
fi
if [[ ${SUMMITRY_JANUS_NO_SYSTEM:-0} != 1 ]] && sys=$(command -v janus 2>/dev/null) &&
  sys=$(readlink -f "$sys") && good_janus "$sys"; then
  log "system janus at $sys (version $(janus_version_text "$sys"))"
  printf '%s\n' "$sys"
  exit 0
fi

# ---------------------------------------------------------------- helpers
T0=$(date +%s)
STEP_T=$T0
STEP_ACTIVE=0
step() { # print the previous step's duration, then announce the next step
  local now; now=$(date +%s)
  ((STEP_ACTIVE)) && log "  ... took $((now - STEP_T)) s"
  STEP_T=$now
  STEP_ACTIVE=1
  log "$*"
}

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || die "not root and no sudo: cannot install build dependencies"
  SUDO=(sudo)
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/summitry-janus-build.XXXXXX")
chmod 755 "$WORK"           # apt's download sandbox user (_apt) must reach it
LOG=$WORK/build.log
: >"$LOG"
KEEP_WORK=0
LOCK_HELD=0

on_exit() {
  local rc=$?
  if [[ $rc -ne 0 ]]; then
    if [[ -s $LOG ]]; then
      printf 'janus: ---- last 40 lines of %s ----\n' "$LOG" >&2
      tail -n 40 "$LOG" >&2 || true
      printf 'janus: ----\n' >&2
    fi
    log "FAILED after $(($(date +%s) - T0)) s; build directory kept: $WORK"
    rm -rf "$PREFIX.tmp.$$" 2>/dev/null || true
  elif [[ $KEEP_WORK != 1 ]]; then
    rm -rf "$WORK"
  fi
}
trap on_exit EXIT

run() { # run a noisy command, output to the log
  printf '\n+ %s\n' "$*" >>"$LOG"
  "$@" >>"$LOG" 2>&1
}

# Serialise concurrent builds of the same prefix; re-check the cache after the wait.
mkdir -p "$(dirname "$PREFIX")"
exec 9>"$PREFIX.lock"
if ! flock -n 9; then
  log "another build of $PREFIX is running; waiting for it"
  flock 9
  if good_janus "$PREFIX/bin/janus"; then
    log "cached at $PREFIX (version $(janus_version_text "$PREFIX/bin/janus"))"
    printf '%s\n' "$PREFIX/bin/janus"
    exit 0
  fi
fi

log "no janus >= 1.4 at $PREFIX; building it from Debian's '$DEB_SUITE' source (work dir $WORK)"

# ---------------------------------------------------------------- 1. build deps
apt_env=(env DEBIAN_FRONTEND=noninteractive)
missing_pkgs() { # packages not installed (dpkg status "install ok installed")
  local p
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' ||
      printf '%s\n' "$p"
  done
}
mapfile -t MISSING < <(missing_pkgs)
if ((${#MISSING[@]})); then
  step "installing build dependencies: ${MISSING[*]}"
  lists_empty=1
  compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null && lists_empty=0
  if ((lists_empty)); then
    run "${SUDO[@]}" "${apt_env[@]}" apt-get update ||
      die "apt-get update failed (is the Debian mirror reachable?)"
  fi
  if ! run "${SUDO[@]}" "${apt_env[@]}" apt-get install -y --no-install-recommends "${MISSING[@]}"; then
    log "apt-get install failed; refreshing package lists and retrying"
    run "${SUDO[@]}" "${apt_env[@]}" apt-get update ||
      die "apt-get update failed (is the Debian mirror reachable?)"
    if ! run "${SUDO[@]}" "${apt_env[@]}" apt-get install -y --no-install-recommends "${MISSING[@]}"; then
      bad=()
      for p in "${MISSING[@]}"; do
        cand=$(apt-cache policy "$p" 2>/dev/null | awk '/Candidate:/ { print $2 }')
        [[ -z $cand || $cand == "(none)" ]] && bad+=("$p")
      done
      if ((${#bad[@]})); then
        die "apt cannot install build dependencies (no candidate): ${bad[*]}"
      fi
      die "apt-get install of build dependencies failed: ${MISSING[*]} (see log)"
    fi
  fi
  mapfile -t STILL < <(missing_pkgs)
  ((${#STILL[@]} == 0)) || die "build dependencies still missing after apt-get install: ${STILL[*]}"
else
  step "build dependencies already installed"
fi

# ---------------------------------------------------------------- 2. source
# Same mirror as the system's own apt sources (not security/updates), else deb.debian.org.
system_mirror() {
  local f uri
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -r $f ]] || continue
    while read -r uri; do
      [[ $uri == *security* ]] && continue
      [[ $uri == */debian || $uri == */debian/ ]] && { printf '%s\n' "${uri%/}"; return; }
    done < <(sed -nE 's/^[[:space:]]*URIs:[[:space:]]*//p' "$f" | tr ' \t' '\n\n' | sed '/^$/d')
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -r $f ]] || continue
    while read -r uri; do
      [[ $uri == *security* ]] && continue
      [[ $uri == */debian || $uri == */debian/ ]] && { printf '%s\n' "${uri%/}"; return; }
    done < <(sed -nE 's/^[[:space:]]*deb(-src)?[[:space:]]+(\[[^]]*\][[:space:]]+)?([^[:space:]]+).*/\3/p' "$f")
  done
  printf '%s\n' http://deb.debian.org/debian
}
MIRROR=${SUMMITRY_JANUS_MIRROR:-$(system_mirror)}

step "fetching source ($DEB_SUITE) of '$DEB_SRC_PACKAGE' from $MIRROR ..."
APTDIR=$WORK/apt
mkdir -p "$APTDIR/lists/partial" "$APTDIR/cache/archives/partial" "$WORK/src"
chmod -R 755 "$APTDIR"
signed=""
[[ -r $KEYRING ]] && signed="[signed-by=$KEYRING] "
printf 'deb-src %s%s %s main\n' "$signed" "$MIRROR" "$DEB_SUITE" >"$APTDIR/sources.list"
APT_TMP=(-o "Dir::Etc::sourcelist=$APTDIR/sources.list" -o "Dir::Etc::sourceparts=-"
  -o "Dir::State::Lists=$APTDIR/lists" -o "Dir::Cache=$APTDIR/cache"
  -o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache=")
run "${SUDO[@]}" apt-get "${APT_TMP[@]}" --error-on=any update ||
  die "could not fetch the '$DEB_SUITE' source index from $MIRROR (apt-get update with a temporary deb-src list failed)"
(cd "$WORK/src" && run "${SUDO[@]}" apt-get "${APT_TMP[@]}" source --download-only "$DEB_SRC_PACKAGE") ||
  die "could not download source package '$DEB_SRC_PACKAGE' from $MIRROR $DEB_SUITE"
[[ ${#SUDO[@]} -eq 0 ]] || "${SUDO[@]}" chown -R "$(id -u):$(id -g)" "$WORK/src"
DSC=$(compgen -G "$WORK/src/${DEB_SRC_PACKAGE}_*.dsc" | head -1) ||
  die "no .dsc downloaded for '$DEB_SRC_PACKAGE' (source fetch incomplete)"
SRC_VERSION=$(sed -nE 's/^Version:[[:space:]]*//p' "$DSC" | head -1)
log "  source $DEB_SRC_PACKAGE $SRC_VERSION"
(cd "$WORK/src" && run dpkg-source -x "$(basename "$DSC")" janus-src) ||
  die "dpkg-source -x failed for $(basename "$DSC")"
SRC=$WORK/src/janus-src

# ---------------------------------------------------------------- 3. build
step "configuring (about 15 s) ..."
cd "$SRC"
run ./autogen.sh || die "autogen.sh failed"
run ./configure --prefix="$PREFIX" \
  --disable-docs --disable-all-plugins --disable-all-transports \
  --disable-all-handlers --disable-all-loggers \
  --enable-rest --enable-websockets \
  --enable-plugin-videoroom --enable-plugin-streaming --enable-plugin-echotest \
  --disable-data-channels --disable-post-processing --disable-turn-rest-api ||
  die "configure failed (a -dev package is probably missing; see log)"

step "building (about 25-100 s) ..."
run make -j"$JOBS" || die "make failed"

# ---------------------------------------------------------------- 4. install
# The prefix is baked into the binary (plugin/transport/config folders), so stage
# with DESTDIR, then move the staged tree into place with a rename.
step "installing into $PREFIX ..."
STAGE=$WORK/stage
run make install DESTDIR="$STAGE" || die "make install failed"
[[ -x $STAGE$PREFIX/bin/janus ]] || die "make install produced no $PREFIX/bin/janus"
for so in plugins/libjanus_videoroom.so plugins/libjanus_streaming.so plugins/libjanus_echotest.so \
  transports/libjanus_http.so transports/libjanus_websockets.so; do
  [[ -e $STAGE$PREFIX/lib/janus/$so ]] || die "build did not produce lib/janus/$so"
done
rm -rf "$PREFIX.tmp.$$"
mv "$STAGE$PREFIX" "$PREFIX.tmp.$$"
if [[ -e $PREFIX ]]; then
  mv "$PREFIX" "$PREFIX.old.$$"
fi
mv "$PREFIX.tmp.$$" "$PREFIX"
rm -rf "$PREFIX.old.$$"

good_janus "$PREFIX/bin/janus" ||
  die "installed $PREFIX/bin/janus does not report version >= $MIN_VERSION: $("$PREFIX/bin/janus" --version 2>&1 | head -3 | tr '\n' ' ')"
step "done: janus $(janus_version_text "$PREFIX/bin/janus") at $PREFIX (total $(($(date +%s) - T0)) s)"
printf '%s\n' "$PREFIX/bin/janus"
