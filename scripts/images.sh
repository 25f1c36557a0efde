#!/usr/bin/env bash
# Builds the container images the tests and the demo need, from Debian's archive only (no registry is reachable):
#   $GF_IMAGE_PREFIX/host:bookworm  Debian 12 with systemd as PID 1 (a stand-in for a game host VM)
#   $GF_IMAGE_PREFIX/host:forky     Debian testing with systemd (cgroup2 init wrapper for hybrid-cgroup hosts)
#   $GF_IMAGE_PREFIX/host:bullseye  Debian 11 with systemd: a game host whose Python is 3.9, the oldest Python of the
#                                    hosts the README supports (RHEL 9's)
#   $GF_IMAGE_PREFIX/godot:forky    Debian testing + Godot 4 (editor build, release template): builds the demo
#                                    game and runs the headless test client
#   $GF_IMAGE_PREFIX/ee-base:bookworm  Debian 12 with python3 + pip, no systemd: the base of the AWX execution
#                                    environment (scripts/ee.sh, execution-environment.yml)
# Each image is tagged with a hash of its recipe and rebuilt only when the recipe changes.
# Usage: scripts/images.sh [host-bookworm|host-forky|host-bullseye|godot|ee-base ...]   (default: hosts + godot)
set -euo pipefail
source "$(dirname "$0")/env.sh"

MIRROR="${GF_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
INCLUDE="systemd,systemd-sysv,dbus,python3,python3-apt,sudo,ca-certificates"

# Bump RECIPE_VERSION when the way an image is built changes in this file.
RECIPE_VERSION=1
recipe_hash() { { echo "$RECIPE_VERSION $INCLUDE"; cat "$GF_ROOT/scripts/images/"*; } | sha256sum | cut -c1-12; }
HASH="$(recipe_hash)"

# debootstrap_rootfs SUITE SCRIPT INCLUDE: prints the directory of a new minbase root file system with the INCLUDE
# packages (comma-separated), an empty machine-id and no apt caches or package lists
debootstrap_rootfs() {
    local suite="$1" script="$2" include="$3" dir
    dir="$(mktemp -d "${TMPDIR:-/tmp}/gf-rootfs.XXXXXX")"
    debootstrap --variant=minbase --include="$include" "$suite" "$dir" "$MIRROR" "$script" >"$dir.log" 2>&1 \
        || { tail -20 "$dir.log" >&2; die "debootstrap $suite failed (log: $dir.log)"; }
    rm -f "$dir.log"
    : >"$dir/etc/machine-id"
    rm -rf "$dir"/var/cache/apt/*.bin "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
    echo "$dir"
}

build_host() {  # $1 suite, $2 debootstrap script
    local suite="$1" script="$2" image="$GF_IMAGE_PREFIX/host:$1"
    if podman image exists "$image-$HASH"; then log "$image is up to date"; podman tag "$image-$HASH" "$image"; return; fi
    log "building $image with debootstrap (a few minutes)"
    local dir; dir="$(debootstrap_rootfs "$suite" "$script" "$INCLUDE")"
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

# The execution environment's base: a recipe of its own (EE_*), so that it never rebuilds the host images.
# python3-pip: ansible-builder installs everything with pip (options.skip_pip_install); ca-certificates: pip, boto3
# and the Azure SDK over HTTPS. apt-get behind a dnf command (scripts/ee/dnf-apt as /usr/bin/dnf) serves the
# builder's dnf calls; the real dnf of an RPM base serves them there. The recipe hash covers the functions that build
# it, so any change to them rebuilds it.
EE_INCLUDE="python3,python3-pip,ca-certificates"
EE_SECURITY_MIRROR="${GF_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
ee_base_hash() {
    { echo "$EE_INCLUDE $MIRROR $EE_SECURITY_MIRROR"; declare -f debootstrap_rootfs build_ee_base
      cat "$GF_ROOT/scripts/ee/dnf-apt"; } | sha256sum | cut -c1-12
}

build_ee_base() {
    local image="$GF_IMAGE_PREFIX/ee-base:bookworm" hash; hash="$(ee_base_hash)"
    if podman image exists "$image-$hash"; then log "$image is up to date"; podman tag "$image-$hash" "$image"; return; fi
    log "building $image with debootstrap (a few minutes)"
    local dir; dir="$(debootstrap_rootfs bookworm bookworm "$EE_INCLUDE")"
    # no documentation, manual pages or translations in what apt installs later (as Debian's -slim images)
    printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-include /usr/share/doc/*/copyright' \
        'path-exclude /usr/share/man/*' 'path-exclude /usr/share/info/*' 'path-exclude /usr/share/locale/*' \
        'path-exclude /usr/share/lintian/*' \
        '# pip owns this Python (ansible-builder installs Ansible and the SDKs with it): no PEP 668 marker' \
        'path-exclude /usr/lib/python3*/EXTERNALLY-MANAGED' >"$dir/etc/dpkg/dpkg.cfg.d/90godot-fleet-ee"
    find "$dir/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
    rm -rf "$dir"/usr/share/man/* "$dir"/usr/share/info/* "$dir"/usr/share/locale/* "$dir"/usr/lib/python3*/EXTERNALLY-MANAGED
    # Debian's point and security updates, now and for what the builder installs
    printf 'deb %s bookworm main\ndeb %s bookworm-updates main\ndeb %s bookworm-security main\n' \
        "$MIRROR" "$MIRROR" "$EE_SECURITY_MIRROR" >"$dir/etc/apt/sources.list"
    { chroot "$dir" apt-get update -q && DEBIAN_FRONTEND=noninteractive chroot "$dir" apt-get upgrade -y -q; } \
        >"$dir.log" 2>&1 || { tail -20 "$dir.log" >&2; die "apt-get upgrade in the ee-base root failed"; }
    rm -f "$dir.log"
    chroot "$dir" apt-get clean
    rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/*.bin "$dir"/var/log/apt/* "$dir"/var/log/dpkg.log
    : >"$dir/etc/resolv.conf"  # debootstrap copied this machine's; the container runtime provides its own
    : >"$dir/etc/hostname"
    install -m 0755 "$GF_ROOT/scripts/ee/dnf-apt" "$dir/usr/bin/dnf"
    tar -C "$dir" --numeric-owner --xattrs -c . |
        podman import --change 'CMD ["/bin/bash"]' --change "LABEL org.godot-fleet.recipe=$hash" - "$image-$hash" >/dev/null
    podman tag "$image-$hash" "$image"
    rm -rf "$dir"
    log "built $image"
}

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(host-bookworm host-forky godot)  # host-bullseye: make test only; ee-base: make ee
for t in "${targets[@]}"; do
    case "$t" in
        host-bookworm) build_host bookworm bookworm ;;
        host-forky) build_host forky sid ;;
        host-bullseye) build_host bullseye bullseye ;;
        godot) build_godot ;;
        ee-base) build_ee_base ;;
        *) die "unknown image '$t' (host-bookworm, host-forky, host-bullseye, godot, ee-base)" ;;
    esac
done
