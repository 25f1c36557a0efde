#!/usr/bin/env bash
# make demo-azure / make demo-down: deploy-azure.yml against the local Azure (the ARM test double, Azurite and a
# managed-identity stand-in, see testbed/azure.py), the VM mapped to a local systemd container.
#   scripts/demo-azure.sh up     start the local Azure (or reuse it), deploy, check every room with a client, print addresses
#   scripts/demo-azure.sh down   teardown-azure.yml, then stop the container and the local Azure
set -euo pipefail
source "$(dirname "$0")/env.sh"
source "$(dirname "$0")/demo-lib.sh"
cd "$GF_ROOT"
STATE="$GF_CACHE/demo-azure"
PORT="${GF_DEMO_AZURE_PORT:-14620}"   # ARM proxy; +1 identity endpoint, +2 Azurite (HTTPS)
HOST=godot-fleet-demo-azure-0
INVENTORY=inventories/local/azure/hosts.yml

load_env() { set -a; source "$STATE/env"; set +a; }

up() {
    [ -f dist/VERSION ] || die "no demo build in dist/: run 'make game' (make demo-azure does it)"
    mkdir -p "$STATE"
    [ -f "$STATE/admin" ] || ssh-keygen -q -t ed25519 -N "" -C godot-fleet-demo-admin -f "$STATE/admin"
    if ! running "$STATE/azure.pid"; then
        log "starting the local Azure on 127.0.0.1:$PORT-$((PORT + 2)) (log: $STATE/azure.log)"
        start_background "the local Azure" "$STATE/azure.log" "$STATE/azure.pid" \
            python -m testbed.azure serve --dir "$STATE" --port "$PORT" --account godotfleetdemobuilds
    fi
    load_env
    log "starting the container $HOST that stands in for the VM"
    python -m testbed.azure host-up "$HOST" --dir "$STATE"
    log "deploying with deploy-azure.yml"
    ansible-playbook -i "$INVENTORY" deploy-azure.yml
    local targets=(127.0.0.1:12277 127.0.0.1:12278)
    check_rooms "AZURE_ARM_DOUBLE=$GF_AZURE_DOUBLE" "${targets[@]}"
    cat <<EOT

The emulated subscription holds the resource group, storage account, NSG, VNet, public IP, NIC, VM and the role
assignment; list it with: curl -s $GF_AZURE_DOUBLE/_double/resources | python3 -m json.tool
The VM is the container $HOST (podman exec $HOST systemctl status 'godot-server@*'); it fetched the build from
Azurite ($GF_AZURE_BLOB) with a token of its managed identity.
EOT
    client_hint "${targets[0]}"
    echo "Remove everything with: make demo-down"
}

down() {
    if running "$STATE/azure.pid"; then
        load_env
        log "teardown-azure.yml on the local Azure"
        ansible-playbook -i "$INVENTORY" teardown-azure.yml >"$STATE/teardown.log" 2>&1 ||
            log "teardown failed (see $STATE/teardown.log); stopping the local Azure anyway"
    fi
    stop_background "$STATE/azure.pid"
    if podman container exists "$HOST"; then
        python -m testbed.azure host-down "$HOST"
        log "removed $HOST"
    fi
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    *) die "usage: $0 up|down" ;;
esac
