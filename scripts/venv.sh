#!/usr/bin/env bash
# Creates/updates the project venv (.venv). Reinstalls only when a requirements file changed.
set -euo pipefail
source "$(dirname "$0")/env.sh"
stamp="$GF_VENV/.requirements.sha256"
# the recipe: our requirement files and pyproject.toml, plus the Azure SDK list of the azure.azcollection that requirements.txt pins
want="$( (cat "$GF_ROOT"/requirements*.txt "$GF_ROOT/pyproject.toml" "$GF_ROOT/room_api/pyproject.toml"; echo "azure.azcollection requirements") | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then log "venv is up to date ($GF_VENV)"; exit 0; fi
log "creating venv $GF_VENV"
python3 -m venv "$GF_VENV"
"$GF_VENV/bin/pip" install --quiet --disable-pip-version-check --upgrade pip
"$GF_VENV/bin/pip" install --quiet --disable-pip-version-check -r "$GF_ROOT/requirements-dev.txt"
# azure.azcollection (bundled with the ansible package) lists the Azure SDK versions it is tested with
azure_reqs="$("$GF_VENV/bin/python" -c 'import ansible_collections.azure.azcollection as c, os; print(os.path.join(list(c.__path__)[0], "requirements.txt"))')"
log "installing the Azure SDK for azure.azcollection ($azure_reqs)"
"$GF_VENV/bin/pip" install --quiet --disable-pip-version-check -r "$azure_reqs"
# the test bed, the benchmarks (pyproject.toml) and the room API (room_api/pyproject.toml) of this checkout, editable
"$GF_VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps --editable "$GF_ROOT" --editable "$GF_ROOT/room_api"
echo "$want" >"$stamp"
log "venv ready"
