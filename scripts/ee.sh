#!/usr/bin/env bash
# The AWX execution environment: execution-environment.yml built by ansible-builder with podman on the Debian base
# scripts/images.sh makes (ee-base), tagged $GF_IMAGE_PREFIX/ee:<recipe hash> and $GF_IMAGE_PREFIX/ee:latest.
# The recipe: the definition, bindep.txt, requirements.txt, the Azure SDK list, the collection's content (the
# checksums of the built tarball's MANIFEST.json and FILES.json), the base image, ansible-builder's version and this
# script; an image of an unchanged recipe is reused, and older recipes' images are removed.
#   scripts/ee.sh                build the image unless it is up to date
#   scripts/ee.sh --print-image  print this checkout's image name (what the tests run), building it first unless it
#                                is up to date (seconds when only the collection changed)
#   scripts/ee.sh --inputs       prepare what the definition reads from .cache/ee/ (the collection tarball, the Azure
#                                SDK list) for an `ansible-builder build` of your own; prints that directory
# GF_EE_BUILD_CA (default: this machine's bundle, /etc/ssl/certs/ca-certificates.crt) is mounted over the base's CA
# bundle during the build only (pip behind a TLS-inspecting proxy); the image keeps Debian's own.
set -euo pipefail
source "$(dirname "$0")/env.sh"

mode="${1:-build}"
case "$mode" in build | --print-image | --inputs) ;; *) die "usage: scripts/ee.sh [--print-image | --inputs]" ;; esac
[ $# -le 1 ] || die "usage: scripts/ee.sh [--print-image | --inputs]"

INPUTS="$GF_CACHE/ee"
BASE="$GF_IMAGE_PREFIX/ee-base:bookworm"  # the definition's images.base_image.name
IMAGE="$GF_IMAGE_PREFIX/ee"
CA="${GF_EE_BUILD_CA:-/etc/ssl/certs/ca-certificates.crt}"
mkdir -p "$INPUTS"
exec 9>"$INPUTS/.lock"
flock 9  # test workers ask for the image name side by side: one of us writes the inputs at a time

prepare_inputs() {
    # the collection as its users get it, under a name without its version (the definition names it)
    "$GF_ROOT/scripts/collection.sh" "$INPUTS/collection" >/dev/null
    cp "$(ls "$INPUTS"/collection/godot_fleet-fleet-*.tar.gz)" "$INPUTS/godot_fleet-fleet.tar.gz"
    # the Azure SDK list of the azure.azcollection the pinned `ansible` package bundles (scripts/venv.sh installs it)
    local want have
    want="$(sed -n 's/^ansible==//p' "$GF_ROOT/requirements.txt")"
    have="$(python -c 'import importlib.metadata as m; print(m.version("ansible"))')"
    [ "$want" = "$have" ] || die "the venv has ansible $have, requirements.txt pins $want: run make venv"
    python -c 'import ansible_collections.azure.azcollection as c, shutil, sys
shutil.copyfile(list(c.__path__)[0] + "/requirements.txt", sys.argv[1])' "$INPUTS/azure-azcollection-requirements.txt"
}

recipe_hash() {
    {
        ansible-builder --version
        podman image inspect --format '{{.Id}}' "$BASE" 2>/dev/null || echo "no $BASE"
        cat "$GF_ROOT/execution-environment.yml" "$GF_ROOT/bindep.txt" "$GF_ROOT/requirements.txt" \
            "$INPUTS/azure-azcollection-requirements.txt" "$GF_ROOT/scripts/ee.sh"
        tar -xzOf "$INPUTS/godot_fleet-fleet.tar.gz" MANIFEST.json FILES.json
    } | sha256sum | cut -c1-12
}

prepare_inputs
case "$mode" in
--inputs) echo "$INPUTS"; exit 0 ;;
--print-image) podman image exists "$IMAGE:$(recipe_hash)" && { echo "$IMAGE:$(recipe_hash)"; exit 0; } ;;
esac

podman image exists "$BASE" || die "no $BASE: scripts/images.sh ee-base builds it (make ee does)"
[ -f "$CA" ] || die "no CA bundle at $CA: set GF_EE_BUILD_CA to this machine's"
tag="$IMAGE:$(recipe_hash)"
if podman image exists "$tag"; then
    log "$tag is up to date"
else
    log "building $tag with ansible-builder (about 5 min from nothing, seconds when only the collection changed; log: $INPUTS/build.log)"
    rm -rf "$INPUTS/context"
    (cd "$GF_ROOT" && ansible-builder build --file execution-environment.yml --context "$INPUTS/context" \
        --container-runtime podman --tag "$tag" --verbosity 3 \
        --extra-build-cli-args "--network=host --volume=$CA:/etc/ssl/certs/ca-certificates.crt:ro") \
        >"$INPUTS/build.log" 2>&1 || { tail -40 "$INPUTS/build.log" >&2; die "ansible-builder build failed (log: $INPUTS/build.log)"; }
    log "built $tag ($(podman image inspect --format '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1 / 1e6}'))"
fi
podman tag "$tag" "$IMAGE:latest"
# the images of older recipes (one in use by a container stays)
for old in $(podman images --noheading --format '{{.Repository}}:{{.Tag}}' "$IMAGE"); do
    [ "$old" = "$tag" ] || [ "$old" = "$IMAGE:latest" ] || podman rmi "$old" >/dev/null 2>&1 || true
done
[ "$mode" != --print-image ] || echo "$tag"
