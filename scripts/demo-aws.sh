#!/usr/bin/env bash
# make demo-aws / make demo-down: deploy-aws.yml against the local AWS (moto on loopback), the instance mapped to
# a local systemd container (scripts/aws_local.py explains the stand-ins).
#   scripts/demo-aws.sh up     start the local AWS (or reuse it), deploy, check every room with a client, print addresses
#   scripts/demo-aws.sh down   teardown-aws.yml, then stop the container and the local AWS
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$GF_ROOT"
STATE="$GF_CACHE/demo-aws"
PORT="${GF_DEMO_AWS_PORT:-14566}"
HOST=godot-fleet-demo-aws-0
INVENTORY=inventories/local/aws/hosts.yml
export AWS_ENDPOINT_URL="http://127.0.0.1:$PORT"
# dummy credentials: the local AWS accepts any (never real keys here)
export AWS_ACCESS_KEY_ID=godot-fleet-demo-key AWS_SECRET_ACCESS_KEY=godot-fleet-demo-secret

aws_running() { [ -f "$STATE/aws.pid" ] && kill -0 "$(cat "$STATE/aws.pid")" 2>/dev/null; }

up() {
    [ -f dist/VERSION ] || die "no demo build in dist/: run 'make game' (make demo-aws does it)"
    mkdir -p "$STATE"
    [ -f "$STATE/admin" ] || ssh-keygen -q -t ed25519 -N "" -C godot-fleet-demo-admin -f "$STATE/admin"
    if ! aws_running; then
        log "starting the local AWS on $AWS_ENDPOINT_URL (log: $STATE/aws.log)"
        setsid python scripts/aws_local.py serve --port "$PORT" >"$STATE/aws.log" 2>&1 </dev/null &
        echo $! >"$STATE/aws.pid"
        for _ in $(seq 100); do grep -q '^READY' "$STATE/aws.log" && break; sleep 0.1; done
        grep -q '^READY' "$STATE/aws.log" || die "the local AWS did not start: $(tail -5 "$STATE/aws.log")"
    fi
    log "starting the container $HOST that stands in for the instance"
    python scripts/aws_local.py host-up "$HOST" --endpoint "$AWS_ENDPOINT_URL" --fleet godot-fleet-demo-aws
    log "deploying with deploy-aws.yml"
    ansible-playbook -i "$INVENTORY" deploy-aws.yml
    log "checking every room with a client from this machine"
    local targets=(127.0.0.1:12177 127.0.0.1:12178)
    python tests/probe/enet_probe.py --timeout 5 "${targets[@]}"
    echo
    echo "AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL"
    for t in "${targets[@]}"; do echo "GODOT_SERVER=$t"; done
    cat <<EOT

The emulated AWS account (moto) holds the bucket, policy, role, VPC, security group and instance; read it with
  AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x .venv/bin/python -c \\
    "import boto3; print(boto3.client('ec2', region_name='eu-west-1').describe_instances()['Reservations'])"
The instance is the container $HOST (podman exec $HOST systemctl status 'godot-server@*').
Connect a headless test client:
  CONTAINERS_CONF=$CONTAINERS_CONF podman run --rm --network host -v $GF_ROOT/dist:/dist:ro $GF_IMAGE_PREFIX/godot:forky \\
    godot --headless --main-pack /dist/godot-fleet-demo-$(cat dist/VERSION).pck -- --client --connect=${targets[0]}
Remove everything with: make demo-down
EOT
}

down() {
    if aws_running; then
        log "teardown-aws.yml on the local AWS"
        ansible-playbook -i "$INVENTORY" teardown-aws.yml >"$STATE/teardown.log" 2>&1 ||
            log "teardown failed (see $STATE/teardown.log); stopping the local AWS anyway"
        kill "$(cat "$STATE/aws.pid")" 2>/dev/null || true
    fi
    rm -f "$STATE/aws.pid"
    if podman container exists "$HOST"; then
        python scripts/aws_local.py host-down "$HOST"
        log "removed $HOST"
    fi
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    *) die "usage: $0 up|down" ;;
esac
