#!/usr/bin/env bash
# Builds the demo game's release artifacts into dist/, inside the godot image (Debian testing + Godot 4):
#   godot-fleet-demo-VER.pck                           the game pack (--export-pack): any Godot 4.6 runtime runs it
#                                                      with --main-pack
#   godot-fleet-demo-VER-linux-x86_64.tar.gz           "exported server": godot-fleet-demo.x86_64 + godot-fleet-demo.pck
#                                                      (Debian's release template: needs Debian testing's glibc >= 2.43
#                                                      and its system libraries)
#   godot-fleet-demo-VER-portable-linux-x86_64.tar.gz  "engine runtime + --main-pack": launcher script `godot`, the
#                                                      engine with its own loader and libraries (engine/), the pack;
#                                                      runs on any x86_64 Linux with a kernel >= 3.2 (e.g. Debian 12):
#                                                      ./godot --headless --main-pack godot-fleet-demo.pck -- --server
#   SHA256SUMS, SHA512SUMS, VERSION (config/version), RELEASE (VERSION+build id: the label to deploy)
# The build is skipped when the stamp (hash of godot/demo, this script and the godot image id) matches.
# Usage: scripts/build-game.sh [--force]        Env: GF_GODOT_IMAGE (default $GF_IMAGE_PREFIX/godot:forky)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/env.sh"

force=0
for arg in "$@"; do
    case "$arg" in
        --force) force=1 ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument '$arg' (usage: scripts/build-game.sh [--force])" ;;
    esac
done

start=$(date +%s.%N)
PROJECT="$GF_ROOT/godot/demo"
IMAGE="${GF_GODOT_IMAGE:-$GF_IMAGE_PREFIX/godot:forky}"
NAME=godot-fleet-demo

VER="$(sed -n 's/^config\/version="\(.*\)"$/\1/p' "$PROJECT/project.godot")"
[[ "$VER" =~ ^[0-9A-Za-z][0-9A-Za-z.+_-]*$ ]] || die "cannot read a sane config/version from $PROJECT/project.godot (got '$VER')"
PCK="$NAME-$VER.pck"
SERVER_TGZ="$NAME-$VER-linux-x86_64.tar.gz"
PORTABLE_TGZ="$NAME-$VER-portable-linux-x86_64.tar.gz"
OUTPUTS=("$PCK" "$SERVER_TGZ" "$PORTABLE_TGZ" SHA256SUMS SHA512SUMS VERSION RELEASE)

image_id="$(podman image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null)" \
    || die "image $IMAGE not found: build it with scripts/images.sh godot"

# Every project file except Godot's import cache, by name and content.
source_hash() {
    (cd "$PROJECT" && find . -path ./.godot -prune -o -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
}
stamp_file="$GF_DIST/.$NAME.stamp"
stamp="$({ source_hash; sha256sum <"$0"; echo "$image_id"; } | sha256sum | cut -d' ' -f1)"
if [ "$force" = 0 ] && [ -f "$stamp_file" ] && [ "$(cat "$stamp_file")" = "$stamp" ]; then
    missing=0
    for f in "${OUTPUTS[@]}"; do [ -f "$GF_DIST/$f" ] || missing=1; done
    if [ "$missing" = 0 ]; then
        log "$NAME $VER is up to date in $GF_DIST (scripts/build-game.sh --force rebuilds)"
        exit 0
    fi
fi

mkdir -p "$GF_DIST"
stage="$(mktemp -d "$GF_DIST/.build.XXXXXX")"
trap 'rm -rf "$stage"' EXIT

log "building $NAME $VER in $IMAGE"
# The project is mounted read-only and exported from a copy: the export's .godot/ never touches the tree.
podman run --rm -i --network none \
    -v "$PROJECT:/src:ro,Z" -v "$stage:/out:Z" \
    -e "PCK=$PCK" -e "NAME=$NAME" \
    "$IMAGE" bash -s <<'EOF' || die "the export failed (see above)"
set -euo pipefail
export HOME=/tmp/home XDG_DATA_HOME=/tmp/home/.local/share XDG_CONFIG_HOME=/tmp/home/.config
mkdir -p "$HOME"
cp -a /src /tmp/project
rm -rf /tmp/project/.godot
cd /tmp/project

export_game() {  # $1 export option, $2 output
    if ! godot --headless --path . "$1" Linux "$2" >/tmp/export.log 2>&1 || [ ! -s "$2" ]; then
        cat /tmp/export.log >&2
        echo "godot $1 failed" >&2
        exit 1
    fi
}
export_game --export-pack "/out/$PCK"
mkdir /out/server
export_game --export-release "/out/server/$NAME.x86_64"
[ -s "/out/server/$NAME.pck" ] || { echo "--export-release wrote no $NAME.pck" >&2; exit 1; }

# Portable runtime: Debian's editor build (the release template refuses --main-pack), every library ldd lists,
# the libraries it dlopens headless (SDL3 -> libudev, TBB -> libtbbmalloc) and the dynamic loader, started
# through the launcher with --library-path, so nothing is taken from the host.
p=/out/portable
mkdir -p "$p/engine/lib"
cp /usr/bin/godot "$p/engine/godot"
extra=(/usr/lib/x86_64-linux-gnu/libudev.so.1 /usr/lib/x86_64-linux-gnu/libtbbmalloc.so.2)
{ ldd /usr/bin/godot; for lib in "${extra[@]}"; do echo "$(basename "$lib") => $lib"; ldd "$lib"; done; } |
    awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 }' | sort -u |
    while read -r soname path; do cp -L "$path" "$p/engine/lib/$soname"; done
cp -L /lib64/ld-linux-x86-64.so.2 "$p/engine/lib/ld-linux-x86-64.so.2"
cat >"$p/godot" <<'LAUNCHER'
#!/bin/sh
# Portable Godot runtime: runs the bundled engine through its bundled dynamic loader and libraries,
# so it needs nothing from the host but an x86_64 Linux kernel. Works through symlinks and from any directory:
#   ./godot --headless --main-pack godot-fleet-demo.pck -- --server --port=12077
here=$(dirname -- "$(readlink -f -- "$0")")
exec "$here/engine/lib/ld-linux-x86-64.so.2" --library-path "$here/engine/lib" "$here/engine/godot" "$@"
LAUNCHER
chmod 0755 "$p/godot"
cp "/out/$PCK" "$p/$NAME.pck"
{
    echo "engine: $(dpkg-query -W -f '${Package} ${Version}' godot) (Debian testing), $(find "$p/engine/lib" -type f | wc -l) libraries"
    echo "run: ./godot --headless --main-pack $NAME.pck -- --server --port=12077"
} >"$p/engine/BUNDLE.txt"

# Smoke tests: both engines start (the portable one through its launcher).
"$p/godot" --headless --version >/dev/null
(cd /out/server && HOME=/tmp/home "./$NAME.x86_64" --headless --version >/dev/null)
EOF

# Reproducible archives: sorted names, root owner, fixed mtime, no gzip timestamp.
epoch="${SOURCE_DATE_EPOCH:-$(git -C "$GF_ROOT" log -1 --format=%ct -- godot/demo 2>/dev/null || true)}"
[ -n "$epoch" ] || epoch="$(cd "$PROJECT" && find . -path ./.godot -prune -o -type f -printf '%T@\n' | sort -n | tail -1 | cut -d. -f1)"
pack() {  # $1 archive, $2 directory, $3... members
    local out="$1" dir="$2"
    shift 2
    tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$epoch" -C "$dir" -cf - "$@" | gzip -n >"$stage/$out"
}
log "packing archives"
pack "$SERVER_TGZ" "$stage/server" "$NAME.x86_64" "$NAME.pck"
pack "$PORTABLE_TGZ" "$stage/portable" godot engine "$NAME.pck"
echo "$VER" >"$stage/VERSION"
# Release label for deployments: the game version plus a build id, so that a rebuilt game with unchanged
# config/version still deploys as a new (immutable) release.
echo "$VER+${stamp:0:10}" >"$stage/RELEASE"
(cd "$stage" && sha256sum "$PCK" "$SERVER_TGZ" "$PORTABLE_TGZ" >SHA256SUMS && sha512sum "$PCK" "$SERVER_TGZ" "$PORTABLE_TGZ" >SHA512SUMS)

# Publish: drop older builds of this game, then move the new files in.
rm -f "$GF_DIST/$NAME"-*.pck "$GF_DIST/$NAME"-*.tar.gz
for f in "${OUTPUTS[@]}"; do mv -f "$stage/$f" "$GF_DIST/$f"; done
echo "$stamp" >"$stamp_file"

elapsed=$(echo "$start $(date +%s.%N)" | awk '{ printf "%.1f", $2 - $1 }')
log "built $NAME $VER in ${elapsed}s ($GF_DIST):"
(cd "$GF_DIST" && for f in "$PCK" "$SERVER_TGZ" "$PORTABLE_TGZ"; do
    printf '    %-52s %8s\n' "$f" "$(du -h --apparent-size "$f" | cut -f1)"
done) >&2
