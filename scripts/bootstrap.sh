#!/usr/bin/env bash
# Installs the system packages the project needs on a Debian 12 machine (root or sudo). Fast when present.
set -euo pipefail
source "$(dirname "$0")/env.sh"
need=()
for pkg in podman runc debootstrap uidmap slirp4netns netavark aardvark-dns python3-venv; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || need+=("$pkg")
done
# Node (Azurite, the Blob emulator of the Azure tests): Debian's nodejs/npm unless a Node is already installed
command -v npm >/dev/null || need+=(nodejs npm)
if [ ${#need[@]} -eq 0 ]; then log "system packages are installed"; exit 0; fi
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
log "installing system packages: ${need[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
