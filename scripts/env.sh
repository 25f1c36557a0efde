# Sourced by the project's scripts: one place for paths and settings.
# shellcheck shell=bash
GF_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export GF_ROOT
export CONTAINERS_CONF="$GF_ROOT/scripts/containers.conf"
export GF_VENV="${GF_VENV:-$GF_ROOT/.venv}"
export GF_DIST="$GF_ROOT/dist"
export GF_CACHE="$GF_ROOT/.cache"
export PATH="$GF_VENV/bin:$PATH"
export ANSIBLE_CONFIG="$GF_ROOT/ansible.cfg"
# Image names: the tag carries a hash of the recipe, so a changed recipe rebuilds and an unchanged one is reused.
export GF_IMAGE_PREFIX="localhost/godot-fleet"
log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
