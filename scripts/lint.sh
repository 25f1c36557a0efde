#!/usr/bin/env bash
# Lint everything: yamllint, ansible-lint (production profile, args rule as an error), ruff, mypy.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$GF_ROOT"
log "yamllint"; yamllint --strict .
log "ansible-lint (production profile)"; ansible-lint --profile production --strict
log "ruff"; ruff check .; ruff format --check .
log "mypy"; mypy
log "lint clean"
