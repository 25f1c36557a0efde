#!/usr/bin/env bash
# Creates/updates the project venv (.venv). Reinstalls only when a requirements file changed.
set -euo pipefail
source "$(dirname "$0")/env.sh"
stamp="$GF_VENV/.requirements.sha256"
want="$(cat "$GF_ROOT"/requirements*.txt | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then log "venv is up to date ($GF_VENV)"; exit 0; fi
log "creating venv $GF_VENV"
python3 -m venv "$GF_VENV"
"$GF_VENV/bin/pip" install --quiet --disable-pip-version-check --upgrade pip
"$GF_VENV/bin/pip" install --quiet --disable-pip-version-check -r "$GF_ROOT/requirements-dev.txt"
echo "$want" >"$stamp"
log "venv ready"
