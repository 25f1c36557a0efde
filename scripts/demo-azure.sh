#!/usr/bin/env bash
# make demo-azure / make demo-down: deploy-azure.yml against the local Azure (the ARM test double, Azurite and a
# managed-identity stand-in, see scripts/azure_local.py), the VM mapped to a local systemd container.
#   scripts/demo-azure.sh up     start the local Azure (or reuse it), deploy, check every room with a client, print addresses
#   scripts/demo-azure.sh down   teardown-azure.yml, then stop the container and the local Azure
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$GF_ROOT"
STATE="$GF_CACHE/demo-azure"
PORT="${GF_DEMO_AZURE_PORT:-14620}"   # ARM proxy; +1 identity endpoint, +2 Azurite (HTTPS)
HOST=godot-fleet-demo-azure-0
INVENTORY=inventories/local/azure/hosts.yml

azure_running() { [ -f "$STATE/azure.pid" ] && kill -0 "$(cat "$STATE/azure.pid")" 2>/dev/null; }
load_env() { set -a; source "$STATE/env"; set +a; }

up() {
    [ -f dist/VERSION ] || die "no demo build in dist/: run 'make game' (make demo-azure does it)"
    mkdir -p "$STATE"
    [ -f "$STATE/admin" ] || ssh-keygen -q -t ed25519 -N "" -C godot-fleet-demo-admin -f "$STATE/admin"
    if ! azure_running; then
        log "starting the local Azure on 127.0.0.1:$PORT-$((PORT + 2)) (log: $STATE/azure.log)"
        setsid python scripts/azure_local.py serve --dir "$STATE" --port "$PORT" --account godotfleetdemobuilds \
            >"$STATE/azure.log" 2>&1 </dev/null &
        echo $! >"$STATE/azure.pid"
        for _ in $(seq 150); do grep -q '^READY' "$STATE/azure.log" && break; sleep 0.1; done
        grep -q '^READY' "$STATE/azure.log" || die "the local Azure did not start: $(tail -5 "$STATE/azure.log")"
    fi
    load_env
    log "starting the container $HOST that stands in for the VM"
    python scripts/azure_local.py host-up "$HOST" --dir "$STATE"
    log "deploying with deploy-azure.yml"
    ansible-playbook -i "$INVENTORY" deploy-azure.yml
    log "checking every room with a client from this machine"
    local targets=(127.0.0.1:12277 127.0.0.1:12278)
    python tests/probe/enet_probe.py --timeout 5 "${targets[@]}"
    echo
    echo "AZURE_ARM_DOUBLE=$GF_AZURE_DOUBLE"
    for t in "${targets[@]}"; do echo "GODOT_SERVER=$t"; done
    cat <<EOT

The emulated subscription holds the resource group, storage account, NSG, VNet, public IP, NIC, VM and the role
assignment; list it with: curl -s $GF_AZURE_DOUBLE/_double/resources | python3 -m json.tool
The VM is the container $HOST (podman exec $HOST systemctl status 'godot-server@*'); it fetched the build from
Azurite ($GF_AZURE_BLOB) with a token of its managed identity.
Connect a headless test client:
  CONTAINERS_CONF=$CONTAINERS_CONF podman run --rm --network host -v $GF_ROOT/dist:/dist:ro $GF_IMAGE_PREFIX/godot:forky \\
    godot --headless --main-pack /dist/godot-fleet-demo-$(cat dist/VERSION).pck -- --client --connect=${targets[0]}
Remove everything with: make demo-down
EOT
}

down() {
    if azure_running; then
        load_env
        log "teardown-azure.yml on the local Azure"
        ansible-playbook -i "$INVENTORY" teardown-azure.yml >"$STATE/teardown.log" 2>&1 ||
            log "teardown failed (see $STATE/teardown.log); stopping the local Azure anyway"
        kill "$(cat "$STATE/azure.pid")" 2>/dev/null || true
    fi
    rm -f "$STATE/azure.pid"
    if podman container exists "$HOST"; then
        python scripts/azure_local.py host-down "$HOST"
        log "removed $HOST"
    fi
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    *) die "usage: $0 up|down" ;;
esac
