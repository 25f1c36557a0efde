#!/usr/bin/env bash
# Builds the demo game's release into dist/ with the packaging path every game uses (build-game.yml, the
# godot_build role), the engine being Debian's Godot 4 in the godot image:
#   godot-fleet-demo-VER.pck                           the pack: the room image's runtime base runs it (--main-pack)
#   godot-fleet-demo-VER-linux-x86_64.tar.gz           exported server: godot-fleet-demo.x86_64 + godot-fleet-demo.pck
#                                                      (Debian's release template: needs Debian testing's libraries)
#   godot-fleet-demo-VER-portable-linux-x86_64.tar.gz  the engine with its own loader and libraries + the pack:
#                                                      runs on any x86_64 Linux (e.g. Debian 12)
#   SHA256SUMS, SHA512SUMS, VERSION, RELEASE (the label to deploy), release.json
# Nothing is rebuilt when the project, the image and the options are unchanged.
# Usage: scripts/build-game.sh [--force]        Env: GF_GODOT_IMAGE (default $GF_IMAGE_PREFIX/godot:forky)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/env.sh"

for arg in "$@"; do
    case "$arg" in
        --force) rm -f "$GF_DIST/release.json" ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument '$arg' (usage: scripts/build-game.sh [--force])" ;;
    esac
done

IMAGE="${GF_GODOT_IMAGE:-$GF_IMAGE_PREFIX/godot:forky}"
podman image exists "$IMAGE" || die "image $IMAGE not found: build it with scripts/images.sh godot"
# The archives' mtime: the last commit that changed the demo (reproducible from a clean checkout).
epoch="$(git -C "$GF_ROOT" log -1 --format=%ct -- godot/demo 2>/dev/null || true)"

cd "$GF_ROOT"
ansible-playbook build-game.yml -e "$(printf '{"godot_build_project": "%s", "godot_build_dest": "%s",
    "godot_build_name": "godot-fleet-demo", "godot_build_container_image": "%s",
    "godot_build_engine": "/usr/bin/godot", "godot_build_export_template": "/usr/bin/godot-template-release",
    "godot_build_artifacts": ["pack", "exported", "portable"], "godot_build_source_date_epoch": %s}' \
    "$GF_ROOT/godot/demo" "$GF_DIST" "$IMAGE" "${epoch:-0}")"
