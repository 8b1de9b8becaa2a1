#!/usr/bin/env bash
# A network namespace for tests and benchmarks that carry media: Janus (libnice) never
# gathers ICE candidates on loopback, so Janus, summitry and the peers all run inside a
# namespace with a veth pair. Usage: netns.sh up|down NAME
set -euo pipefail
MEDIA_ADDRESS="198.18.0.1"
PEER_ADDRESS="198.18.0.2"
action=${1:?up|down}
name=${2:?namespace name}
[ "$(id -u)" -eq 0 ] || { echo "netns: network namespaces need root" >&2; exit 1; }
exists() { ip netns list | awk '{print $1}' | grep -qx "$name"; }
case "$action" in
    up)
        if exists; then
            ip netns pids "$name" | xargs -r kill -9 2>/dev/null || true
            ip netns del "$name"
        fi
        ip netns add "$name"
        ip -n "$name" link set lo up
        ip -n "$name" link add v0 type veth peer name v1
        ip -n "$name" addr add "$MEDIA_ADDRESS/24" dev v0
        ip -n "$name" addr add "$PEER_ADDRESS/24" dev v1
        ip -n "$name" link set v0 up
        ip -n "$name" link set v1 up
        ;;
    down)
        if exists; then
            ip netns pids "$name" | xargs -r kill 2>/dev/null || true
            sleep 0.5
            ip netns pids "$name" | xargs -r kill -9 2>/dev/null || true
            ip netns del "$name"
        fi
        ;;
    *) echo "usage: netns.sh up|down NAME" >&2; exit 2 ;;
esac
