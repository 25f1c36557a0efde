#!/usr/bin/env bash
# Installs the system packages of bindep.txt (default + test profiles) on a Debian 12 machine, as root or
# through sudo; nothing else installs system packages. Fast when they are present.
#   scripts/bootstrap.sh [--check]     --check: list what is missing and fail, install nothing
set -euo pipefail
source "$(dirname "$0")/env.sh"
command -v dpkg-query >/dev/null || die "this bootstrap installs Debian packages (apt); on another system install the packages of bindep.txt (e.g. 'bindep -b test')"
mapfile -t need < <(python3 "$GF_ROOT/scripts/bindep.py" --missing test)
if [ ${#need[@]} -eq 0 ]; then log "system packages are installed (bindep.txt)"; exit 0; fi
[ "${1:-}" != --check ] || die "missing system packages: ${need[*]} (make bootstrap installs them)"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || die "installing ${need[*]} needs root: run 'make bootstrap' as root"
    SUDO="sudo"
    [ -t 0 ] || SUDO="sudo -n"  # no terminal (CI): fail at once instead of waiting for a password
fi
log "installing system packages: ${need[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
mapfile -t still < <(python3 "$GF_ROOT/scripts/bindep.py" --missing test)
[ ${#still[@]} -eq 0 ] || die "still missing after apt-get install: ${still[*]}"
log "system packages installed"
