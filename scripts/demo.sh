#!/usr/bin/env bash
# make demo / make demo-down: the demo game deployed with deploy-hosts.yml to a local systemd container.
#   scripts/demo.sh up     create (or reuse) the container, deploy, check every room with a client, print addresses
#   scripts/demo.sh down   remove what 'up' created
set -euo pipefail
source "$(dirname "$0")/env.sh"
source "$(dirname "$0")/demo-lib.sh"
cd "$GF_ROOT"
NAME=godot-fleet-demo
PORTS=(12077 12078)
IMAGE="$GF_IMAGE_PREFIX/host:bookworm"

up() {
    [ -f dist/VERSION ] || die "no demo build in dist/: run 'make game' (make demo does it)"
    if ! podman container exists "$NAME"; then
        log "starting the demo host container $NAME ($IMAGE)"
        local publish=()
        for p in "${PORTS[@]}"; do publish+=(-p "127.0.0.1:$p:$p/udp"); done
        podman run -d --name "$NAME" --hostname "$NAME" --systemd=always --cap-add SYS_ADMIN \
            "${publish[@]}" -v "$GF_ROOT/dist:/srv/artifacts:ro" "$IMAGE" /lib/systemd/systemd >/dev/null
    elif [ "$(podman inspect -f '{{.State.Running}}' "$NAME")" != true ]; then
        podman start "$NAME" >/dev/null
    fi
    for _ in $(seq 50); do
        state=$(podman exec "$NAME" systemctl is-system-running 2>/dev/null || true)
        case "$state" in running|degraded) break ;; esac
        sleep 0.2
    done
    if ! podman exec "$NAME" systemctl is-active --quiet gf-artifacts.service; then
        podman exec "$NAME" systemd-run --quiet --unit gf-artifacts --property=Restart=always \
            python3 -m http.server 8079 --bind 127.0.0.1 --directory /srv/artifacts
    fi
    log "deploying with deploy-hosts.yml"
    ansible-playbook -i inventories/local/demo.yml deploy-hosts.yml
    local targets=()
    for p in "${PORTS[@]}"; do targets+=("127.0.0.1:$p"); done
    check_rooms "" "${targets[@]}"
    echo
    echo "The demo server runs in the container $NAME under systemd (podman exec $NAME systemctl status 'godot-server@*')."
    client_hint "${targets[0]}"
    cat <<EOT
Or, on a desktop with Godot 4.6: open godot/demo, run it, type ${targets[0]} and press Join.
Remove everything with: make demo-down
EOT
}

down() {
    if podman container exists "$NAME"; then
        podman rm -f -t 5 "$NAME" >/dev/null
        log "removed $NAME"
    else
        log "nothing to remove"
    fi
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    *) die "usage: $0 up|down" ;;
esac
