#!/usr/bin/env bash
# Installs the Node test tools (Azurite) into .cache/node from scripts/node/package.json (+ its lock file).
# Reinstalls only when those files changed.
set -euo pipefail
source "$(dirname "$0")/env.sh"
dest="$GF_CACHE/node"
stamp="$dest/.package.sha256"
want="$(cat "$GF_ROOT"/scripts/node/package*.json | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$dest/node_modules/.bin/azurite-blob" ]; then
    log "node tools are up to date ($dest)"; exit 0
fi
command -v npm >/dev/null || die "npm is missing: run 'make bootstrap' (it installs nodejs and npm)"
log "installing the node tools into $dest (Azurite)"
mkdir -p "$dest"
cp "$GF_ROOT"/scripts/node/package*.json "$dest/"
if [ -f "$dest/package-lock.json" ]; then
    (cd "$dest" && npm ci --no-audit --no-fund --loglevel=error)
else
    (cd "$dest" && npm install --no-audit --no-fund --loglevel=error)
fi
echo "$want" >"$stamp"
log "node tools ready"
