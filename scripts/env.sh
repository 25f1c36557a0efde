# Sourced by the project's scripts: one place for paths and settings.
# shellcheck shell=bash
GF_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export GF_ROOT
export CONTAINERS_CONF="$GF_ROOT/scripts/containers.conf"
export GF_VENV="${GF_VENV:-$GF_ROOT/.venv}"
export GF_DIST="$GF_ROOT/dist"
export GF_CACHE="$GF_ROOT/.cache"
# the room API's Lambda artifact (room_api/build_lambda.py), where the aws_rooms_api role finds it by default
export GF_ROOM_API_ARTIFACT="roles/aws_rooms_api/files/room-api-lambda.zip"
export PATH="$GF_VENV/bin:$PATH"
export ANSIBLE_CONFIG="$GF_ROOT/ansible.cfg"
# Image names: the tag carries a hash of the recipe, so a changed recipe rebuilds and an unchanged one is reused.
export GF_IMAGE_PREFIX="localhost/godot-fleet"
log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
