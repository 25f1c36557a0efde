#!/usr/bin/env bash
# Builds the container images the tests and the demo need, from Debian's archive only (no registry is reachable):
#   $GF_IMAGE_PREFIX/host:bookworm  Debian 12 with systemd as PID 1 (a stand-in for a game host VM)
#   $GF_IMAGE_PREFIX/host:forky     Debian testing with systemd (cgroup2 init wrapper for hybrid-cgroup hosts)
#   $GF_IMAGE_PREFIX/host:bullseye  Debian 11 with systemd: a game host whose Python is 3.9, the oldest Python of the
#                                    hosts the README supports (RHEL 9's)
#   $GF_IMAGE_PREFIX/godot:forky    Debian testing + Godot 4 (editor build, release template): builds the demo
#                                    game and runs the headless test client
# Each image is tagged with a hash of its recipe and rebuilt only when the recipe changes.
# Usage: scripts/images.sh [host-bookworm|host-forky|host-bullseye|godot ...]   (default: all)
set -euo pipefail
source "$(dirname "$0")/env.sh"

MIRROR="${GF_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
INCLUDE="systemd,systemd-sysv,dbus,python3,python3-apt,sudo,ca-certificates"

# Bump RECIPE_VERSION when the way an image is built changes in this file.
RECIPE_VERSION=1
recipe_hash() { { echo "$RECIPE_VERSION $INCLUDE"; cat "$GF_ROOT/scripts/images/"*; } | sha256sum | cut -c1-12; }
HASH="$(recipe_hash)"

build_host() {  # $1 suite, $2 debootstrap script
    local suite="$1" script="$2" image="$GF_IMAGE_PREFIX/host:$1"
    if podman image exists "$image-$HASH"; then log "$image is up to date"; podman tag "$image-$HASH" "$image"; return; fi
    log "building $image with debootstrap (a few minutes)"
    local dir; dir="$(mktemp -d "${TMPDIR:-/tmp}/gf-rootfs.XXXXXX")"
    debootstrap --variant=minbase --include="$INCLUDE" "$suite" "$dir" "$MIRROR" "$script" >"$dir.log" 2>&1 \
        || { tail -20 "$dir.log" >&2; die "debootstrap $suite failed (log: $dir.log)"; }
    rm -f "$dir.log"
    : >"$dir/etc/machine-id"
    rm -rf "$dir"/var/cache/apt/*.bin "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
    # The mirror's Release files may be older than this machine's clock allows for testing/sid.
    printf 'Acquire::Check-Valid-Until "false";\n' >"$dir/etc/apt/apt.conf.d/99godot-fleet-no-valid-until"
    install -m 0755 "$GF_ROOT/scripts/images/init-cgroup2" "$dir/usr/local/sbin/init-cgroup2"
    local cmd='["/lib/systemd/systemd"]'
    case "$suite" in bookworm | bullseye) ;; *) cmd='["/usr/local/sbin/init-cgroup2"]' ;; esac
    tar -C "$dir" --numeric-owner --xattrs -c . |
        podman import --change "CMD $cmd" --change 'STOPSIGNAL SIGRTMIN+3' \
            --change "LABEL org.godot-fleet.recipe=$HASH" - "$image-$HASH" >/dev/null
    podman tag "$image-$HASH" "$image"
    rm -rf "$dir"
    log "built $image"
}

build_godot() {
    local image="$GF_IMAGE_PREFIX/godot:forky"
    if podman image exists "$image-$HASH"; then log "$image is up to date"; podman tag "$image-$HASH" "$image"; return; fi
    build_host forky sid
    log "building $image (Godot 4 from Debian testing)"
    podman build --quiet --build-arg "BASE=$GF_IMAGE_PREFIX/host:forky-$HASH" \
        -f "$GF_ROOT/scripts/images/godot.Containerfile" -t "$image-$HASH" "$GF_ROOT/scripts/images" >/dev/null
    podman tag "$image-$HASH" "$image"
    log "built $image"
}

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(host-bookworm host-forky godot)  # host-bullseye: make test only
for t in "${targets[@]}"; do
    case "$t" in
        host-bookworm) build_host bookworm bookworm ;;
        host-forky) build_host forky sid ;;
        host-bullseye) build_host bullseye bullseye ;;
        godot) build_godot ;;
        *) die "unknown image '$t' (host-bookworm, host-forky, host-bullseye, godot)" ;;
    esac
done
