#!/usr/bin/env bash
# make demo-aws / make demo-down: deploy-aws.yml against the local AWS (moto on loopback), the instance mapped to
# a local systemd container (testbed/aws.py explains the stand-ins).
#   scripts/demo-aws.sh up     start the local AWS (or reuse it), deploy, check every room with a client, print addresses
#   scripts/demo-aws.sh down   teardown-aws.yml, then stop the container and the local AWS
set -euo pipefail
source "$(dirname "$0")/env.sh"
source "$(dirname "$0")/demo-lib.sh"
cd "$GF_ROOT"
STATE="$GF_CACHE/demo-aws"
PORT="${GF_DEMO_AWS_PORT:-14566}"
HOST=godot-fleet-demo-aws-0
INVENTORY=inventories/local/aws/hosts.yml
export AWS_ENDPOINT_URL="http://127.0.0.1:$PORT"
# dummy credentials: the local AWS accepts any (never real keys here)
export AWS_ACCESS_KEY_ID=godot-fleet-demo-key AWS_SECRET_ACCESS_KEY=godot-fleet-demo-secret


up() {
    [ -f dist/VERSION ] || die "no demo build in dist/: run 'make game' (make demo-aws does it)"
    mkdir -p "$STATE"
    [ -f "$STATE/admin" ] || ssh-keygen -q -t ed25519 -N "" -C godot-fleet-demo-admin -f "$STATE/admin"
    if ! running "$STATE/aws.pid"; then
        log "starting the local AWS on $AWS_ENDPOINT_URL (log: $STATE/aws.log)"
        start_background "the local AWS" "$STATE/aws.log" "$STATE/aws.pid" python -m testbed.aws serve --port "$PORT"
    fi
    log "starting the container $HOST that stands in for the instance"
    python -m testbed.aws host-up "$HOST" --endpoint "$AWS_ENDPOINT_URL" --fleet godot-fleet-demo-aws
    log "deploying with deploy-aws.yml"
    ansible-playbook -i "$INVENTORY" deploy-aws.yml
    local targets=(127.0.0.1:12177 127.0.0.1:12178)
    check_rooms "AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL" "${targets[@]}"
    cat <<EOT

The emulated AWS account (moto) holds the bucket, policy, role, VPC, security group and instance; read it with
  AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x .venv/bin/python -c \\
    "import boto3; print(boto3.client('ec2', region_name='eu-west-1').describe_instances()['Reservations'])"
The instance is the container $HOST (podman exec $HOST systemctl status 'godot-server@*').
EOT
    client_hint "${targets[0]}"
    echo "Remove everything with: make demo-down"
}

down() {
    if running "$STATE/aws.pid"; then
        log "teardown-aws.yml on the local AWS"
        ansible-playbook -i "$INVENTORY" teardown-aws.yml >"$STATE/teardown.log" 2>&1 ||
            log "teardown failed (see $STATE/teardown.log); stopping the local AWS anyway"
    fi
    stop_background "$STATE/aws.pid"
    if podman container exists "$HOST"; then
        python -m testbed.aws host-down "$HOST"
        log "removed $HOST"
    fi
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    *) die "usage: $0 up|down" ;;
esac
