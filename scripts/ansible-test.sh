#!/usr/bin/env bash
# ansible-test on the collection as it is installed (ansible-test runs only inside
# ansible_collections/<namespace>/<name>): scripts/collection.sh builds and installs the tarball into a temporary
# directory outside this git checkout (inside it, ansible-test would take its file list from git), then
# ansible-test runs there. What the tarball leaves out is not tested here either.
#   scripts/ansible-test.sh sanity [options]   every sanity test, each in its own venv (--venv: requirements from
#                                              PyPI) on this Python
#   scripts/ansible-test.sh units [options]    tests/unit/plugins with pytest, in this venv
# ansible-test keeps its venvs and downloads under ~/.ansible/test; here that home is
# ${XDG_CACHE_HOME:-~/.cache}/godot-fleet/ansible-test (shared by every clone, nothing else of the user's home is
# touched), and its pip bootstrap is scripts/ansible-test-get-pip.py (ansible-test's own download host may be
# unreachable).
set -euo pipefail
source "$(dirname "$0")/env.sh"
[ $# -ge 1 ] || die "usage: scripts/ansible-test.sh sanity|units [ansible-test options]"
command="$1"
shift
python="$(python -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
work="$(mktemp -d "${TMPDIR:-/tmp}/godot-fleet-ansible-test.XXXXXX")"
trap 'rm -rf "$work"' EXIT
tree="$("$GF_ROOT/scripts/collection.sh" "$work")"
# galaxy.yml's dependencies beside it, where ansible-test looks for them: the ones the ansible package bundles
python - "$work/ansible_collections" <<'PY'
import os, sys, yaml
import ansible_collections
dest = sys.argv[1]
for fqcn in yaml.safe_load(open(os.path.join(os.environ["GF_ROOT"], "galaxy.yml")))["dependencies"]:
    namespace, name = fqcn.split(".")
    link = os.path.join(dest, namespace, name)
    source = next(os.path.join(base, namespace, name) for base in ansible_collections.__path__
                  if os.path.isfile(os.path.join(base, namespace, name, "MANIFEST.json")))
    os.makedirs(os.path.dirname(link), exist_ok=True)
    if not os.path.islink(link):
        os.symlink(source, link)
PY
cd "$tree"
unset ANSIBLE_CONFIG  # the installed tree is tested as it is, without this checkout's ansible.cfg
REAL_HOME="$HOME"
export HOME="${XDG_CACHE_HOME:-$HOME/.cache}/godot-fleet/ansible-test"
mkdir -p "$HOME/.ansible/test/cache"
for version in 24_2; do  # the pip versions ansible-test bootstraps (ansible-core 2.19: 24.2)
    cp "$GF_ROOT/scripts/ansible-test-get-pip.py" "$HOME/.ansible/test/cache/get_pip_$version.py"
done
case "$command" in
    sanity)
        ansible-test sanity --venv --python "$python" --color no "$@"
        # The modules run on managed hosts with Python >= 3.9 (tests/config.yml): compile and import them there too
        # when a 3.9 can be had (pyenv, or python3.9 on PATH)
        py39=""
        for candidate in "$(command -v python3.9 || true)" "${PYENV_ROOT:-$REAL_HOME/.pyenv}"/versions/3.9*/bin/python3.9; do
            if [ -x "$candidate" ] && "$candidate" -V >/dev/null 2>&1; then py39="$candidate"; fi
        done
        if [ -n "$py39" ] && [ $# -eq 0 ]; then
            PATH="$(dirname "$py39"):$PATH" ansible-test sanity --venv --python 3.9 --test compile --test import --color no
        elif [ $# -eq 0 ]; then
            log "no Python 3.9 here: the compile and import tests ran on $python only (ruff checks the modules for 3.9)"
        fi
        ;;
    units) ansible-test units --python "$python" --color no "$@" ;;
    *) die "unknown command '$command' (sanity, units)" ;;
esac
