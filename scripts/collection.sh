#!/usr/bin/env bash
# The collection as its users get it: `ansible-galaxy collection build` (galaxy.yml's build_ignore decides what
# goes in) into DEST, then `ansible-galaxy collection install` of that tarball into DEST as a collections path. The
# dependencies of galaxy.yml are satisfied by the collections the `ansible` package bundles (no Galaxy access).
#   scripts/collection.sh DEST    prints the installed collection's directory (DEST/ansible_collections/godot_fleet/fleet)
set -euo pipefail
source "$(dirname "$0")/env.sh"
[ $# -eq 1 ] || die "usage: scripts/collection.sh DEST (a collections path to install the built collection into)"
dest="$(mkdir -p "$1" && cd "$1" && pwd)"
out="$dest"
rm -f "$out"/godot_fleet-fleet-*.tar.gz
# the room API's Lambda artifact, which the aws_rooms_api role ships (make room-api)
python "$GF_ROOT/room_api/build_lambda.py" "$GF_ROOT/$GF_ROOM_API_ARTIFACT" >/dev/null
ansible-galaxy collection build --force --output-path "$out" "$GF_ROOT" >/dev/null
tarball="$(ls "$out"/godot_fleet-fleet-*.tar.gz)"
rm -rf "$dest/ansible_collections/godot_fleet/fleet"
ansible-galaxy collection install --force -p "$dest" "$tarball" >"$out/install.log" 2>&1 \
    || die "ansible-galaxy collection install failed: $(tail -5 "$out/install.log")"
echo "$dest/ansible_collections/godot_fleet/fleet"
