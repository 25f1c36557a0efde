# Sourced by the demo scripts (demo.sh, demo-aws.sh, demo-azure.sh): the steps they share.
# shellcheck shell=bash

# running PIDFILE: is the background process recorded in PIDFILE alive?
running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# start_background WHAT LOG PIDFILE COMMAND...: start COMMAND in its own session, wait for its READY line
start_background() {
    local what=$1 logfile=$2 pidfile=$3
    shift 3
    setsid "$@" >"$logfile" 2>&1 </dev/null &
    echo $! >"$pidfile"
    for _ in $(seq 150); do grep -q '^READY' "$logfile" && return 0; sleep 0.1; done
    die "$what did not start: $(tail -5 "$logfile")"
}

# stop_background PIDFILE: stop the process recorded in PIDFILE (if any) and forget it
stop_background() {
    if running "$1"; then kill "$(cat "$1")" 2>/dev/null || true; fi
    rm -f "$1"
}

# check_rooms EXTRA_LINE TARGET...: a client round trip with every room, then the address lines
# (EXTRA_LINE, e.g. the emulator's URL, comes first; empty: none)
check_rooms() {
    local extra=$1
    shift
    log "checking every room with a client from this machine"
    python -m testbed.enet_probe --timeout 5 "$@"
    echo
    [ -z "$extra" ] || echo "$extra"
    local t
    for t in "$@"; do echo "GODOT_SERVER=$t"; done
}

# client_hint TARGET: how to connect the headless demo client to TARGET
client_hint() {
    cat <<EOT
Connect a headless test client:
  CONTAINERS_CONF=$CONTAINERS_CONF podman run --rm --network host -v $GF_ROOT/dist:/dist:ro $GF_IMAGE_PREFIX/godot:forky \\
    godot --headless --main-pack /dist/godot-fleet-demo-$(cat dist/VERSION).pck -- --client --connect=$1
EOT
}
