#!/usr/bin/env bash
# make demo-rooms / make demo-down: the room API with the local backend (rooms = podman containers on this host,
# registry in SQLite), then one room created through it and checked by a client.
#   scripts/demo-rooms.sh up     build the room image (cached), start the API (or reuse it), create a room, print
#                                ROOM_API_URL / ROOM_API_KEY and the room's address
#   scripts/demo-rooms.sh down   stop the API; it stops its rooms on the way out
set -euo pipefail
source "$(dirname "$0")/env.sh"
source "$(dirname "$0")/demo-lib.sh"
cd "$GF_ROOT"
STATE="$GF_CACHE/demo-rooms"
PORT="${GF_DEMO_ROOMS_PORT:-12380}"
ROOM_PORTS="${GF_DEMO_ROOMS_ROOM_PORTS:-12381-12399}"
URL="http://127.0.0.1:$PORT"

api() {  # api METHOD PATH [BODY]: one authenticated call, the JSON answer on stdout
    python - "$@" <<'PY'
import json, os, sys, urllib.error, urllib.request
method, path = sys.argv[1], sys.argv[2]
body = sys.argv[3].encode() if len(sys.argv) > 3 else None
req = urllib.request.Request(os.environ["ROOM_API_URL"] + path, data=body, method=method,
                             headers={"Authorization": "Bearer " + os.environ["ROOM_API_KEY"],
                                      "Content-Type": "application/json"})
try:
    with urllib.request.urlopen(req, timeout=30) as answer:
        print(answer.read().decode())
except urllib.error.HTTPError as err:
    sys.exit(f"{method} {path}: HTTP {err.code} {err.read().decode()}")
PY
}

up() {
    [ -f dist/VERSION ] || die "no demo build in dist/: run 'make game' (make demo-rooms does it)"
    mkdir -p "$STATE"
    chmod 0700 "$STATE"
    log "building the room image (cached when unchanged)"
    ansible-playbook build-room-image.yml -e @inventories/local/demo-room.yml >"$STATE/image.log" 2>&1 || die "image build failed: $(tail -20 "$STATE/image.log")"
    if [ ! -s "$STATE/key" ]; then
        (umask 077 && python -c 'import secrets; print(secrets.token_urlsafe(32))' >"$STATE/key")
    fi
    if ! running "$STATE/api.pid"; then
        log "starting the room API on $URL (log: $STATE/api.log)"
        start_background "the room API" "$STATE/api.log" "$STATE/api.pid" \
            python -m room_api serve --backend local --host 127.0.0.1 --port "$PORT" --db "$STATE/rooms.sqlite3" \
            --image "$GF_IMAGE_PREFIX/demo-room:$(cat dist/VERSION)" --ports "$ROOM_PORTS" --max-rooms 10 \
            --api-id demo --key-file "$STATE/key"
    fi
    export ROOM_API_URL="$URL" ROOM_API_KEY
    ROOM_API_KEY="$(cat "$STATE/key")"
    log "creating a room through the API"
    local room target
    room="$(api POST /create_server '{}')"
    target="$(python -c 'import json, sys; r = json.loads(sys.argv[1])["room"]; print("%s:%s" % (r["ip"], r["port"]))' "$room")"
    check_rooms "" "$target"
    cat <<EOT
ROOM_API_URL=$ROOM_API_URL
ROOM_API_KEY=$ROOM_API_KEY

Create, list and stop rooms:
  curl -s -X POST -H "Authorization: Bearer \$ROOM_API_KEY" -d '{"name": "my-room"}' \$ROOM_API_URL/create_server
  curl -s -H "Authorization: Bearer \$ROOM_API_KEY" \$ROOM_API_URL/get_servers
  curl -s -X POST -H "Authorization: Bearer \$ROOM_API_KEY" -d '{"name": "my-room"}' \$ROOM_API_URL/stop_server
Rooms are the containers 'podman ps --filter label=godot-fleet.room-api=demo'; an empty room exits by itself
after its empty timeout and leaves the list.
EOT
    client_hint "$target"
    echo "Stop the API and its rooms with: make demo-down"
}

down() {
    if running "$STATE/api.pid"; then
        log "stopping the room API and its rooms"
        local pid
        pid="$(cat "$STATE/api.pid")"
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    fi
    rm -f "$STATE/api.pid"
    local left
    left="$(podman ps -aq --filter label=godot-fleet.room-api=demo)"
    if [ -n "$left" ]; then
        # shellcheck disable=SC2086
        podman rm -f $left >/dev/null
    fi
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    *) die "usage: $0 up|down" ;;
esac
