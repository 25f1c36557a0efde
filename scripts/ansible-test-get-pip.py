"""Stand-in for the get-pip.py that ansible-test downloads to bootstrap pip in its venvs (from
ci-files.testing.ansible.com, which is not reachable from every machine): scripts/ansible-test.sh puts this file
where ansible-test caches that download. It installs the pip bundled with Python (ensurepip), then runs
`pip install` with the arguments ansible-test gives (pip==24.2 ...) from the package index. get-pip's own options
--no-setuptools and --no-wheel mean "do not install them", which is what leaving them out does here.

ansible-test runs pip without any pip configuration (PIP_CONFIG_FILE=/dev/null). pip 24.2 trusts the system's
certificate store by itself; the older bundled pip does not, so this one install is given the system's CA bundle,
which is what lets a machine behind a TLS-inspecting proxy (whose CA the system trusts) reach the index."""

import ensurepip
import os
import ssl
import subprocess
import sys

ensurepip.bootstrap(upgrade=True)
args = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
system_bundles = [
    ssl.get_default_verify_paths().openssl_cafile,
    "/etc/ssl/certs/ca-certificates.crt",  # Debian, Ubuntu
    "/etc/pki/tls/certs/ca-bundle.crt",  # RHEL, Fedora
]
bundle = next((path for path in system_bundles if path and os.path.isfile(path)), None)
if bundle:
    args += ["--cert", bundle]
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", "--upgrade", *args]))
