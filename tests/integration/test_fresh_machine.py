"""The install step on a pristine Debian 12: scripts/bootstrap.sh (the packages of bindep.txt) in a container made
from the project's debootstrap image (Debian 12 minbase with systemd and python3, nothing the development machine
added by hand), then every command and file the project calls later, and one real `podman run --init` with a
published UDP port inside it, answering a client on the container's loopback.

What this cannot prove, and why: the rest of `make demo` / `make test` inside that container (debootstrap of the
host images, systemd host containers, the Godot build): nested containers here need `--privileged` and a private
cgroup namespace for the outer container, and the inner podman a network other than the outer one's 10.88.0.0/16
and a storage driver that works on overlay (vfs) — none of which the project's own containers use. The full path
runs on the development and CI machine, whose hand-installed packages ../shared/tools/unlisted-packages reports.
"""

from __future__ import annotations

import os
import subprocess

from testbed import ROOT

IMAGE = os.environ.get("GF_IMAGE_PREFIX", "localhost/godot-fleet") + "/host:bookworm"
NAME = "gf-fresh-machine"

# Every command and file the project calls on the machine (scripts, Makefile, tests, demos), with what calls it.
CALLED = {
    "podman": "containers: images, hosts, rooms",
    "runc": "podman's OCI runtime (scripts/containers.conf)",
    "iptables": "netavark's NAT and port forwarding",
    "/usr/lib/podman/netavark": "podman's network backend",
    "/usr/lib/podman/aardvark-dns": "netavark's DNS",
    "/usr/libexec/podman/catatonit": "podman run --init",
    "debootstrap": "scripts/images.sh",
    "make": "the Makefile",
    "git": "scripts/build-game.sh, ansible-galaxy collection build, bench",
    "objdump": "tests/unit: the glibc versions a build needs",
    "shellcheck": "ansible-test sanity",
    "ssh": "ansible's ssh connection",
    "ssh-keygen": "the cloud tests' admin key",
    "curl": "the commands make demo-rooms prints",
    "node": "Azurite",
    "npm": "scripts/node.sh",
    "apt-get": "tests: apt-get download docker-registry",
    "/usr/lib/postgresql/15/bin/initdb": "testbed/awx.py: AWX's database cluster",
    "/usr/lib/postgresql/15/bin/postgres": "testbed/awx.py: AWX's database",
    "redis-server": "testbed/awx.py: AWX's broker and cache",
    "gcc": "testbed/awx.py: pip builds uWSGI for AWX's venv",
    "python3-config": "testbed/awx.py: the uWSGI build's Python headers (python3-dev)",
    "/usr/sbin/sshd": "tests/integration/test_awx_jobs.py: the build host reached over SSH",
    "unshare": "testbed/awx.py: AWX's processes in their own mount namespace",
}

ECHO = """
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 17001))
data, peer = s.recvfrom(100)
s.sendto(b"echo:" + data, peer)
"""

SCRIPT = """
set -eu
mkdir -p /tmp/project
cp -a /src/bindep.txt /src/scripts /tmp/project/
cd /tmp/project
scripts/bootstrap.sh
scripts/bootstrap.sh --check
for thing in {called}; do
    command -v "$thing" >/dev/null || test -x "$thing" || {{ echo "MISSING $thing"; exit 1; }}
done
python3 -m venv /tmp/venv && /tmp/venv/bin/python -m pip --version >/dev/null
echo CALLED_OK
# podman inside this container: its storage on vfs, its network apart from the outer 10.88.0.0/16
export CONTAINERS_CONF=/tmp/project/scripts/containers.conf
P="podman --storage-driver vfs"
root=/tmp/rootfs
mkdir -p "$root/usr" "$root/etc" "$root/tmp" "$root/proc" "$root/sys" "$root/dev"
for d in bin lib lib64 sbin; do ln -sfn "usr/$d" "$root/$d"; done
cat >/tmp/echo.py <<'EOF'
{echo}
EOF
$P network create --subnet 10.213.0.0/24 fresh >/dev/null 2>&1
$P run -d --name echo --network fresh --cgroupns=private --init -p 127.0.0.1:17001:17001/udp \\
    -v /usr:/usr:ro -v /tmp/echo.py:/echo.py:ro --rootfs "$root" python3 /echo.py >/dev/null 2>&1
echo "INIT $($P inspect echo --format '{{{{.HostConfig.Init}}}} {{{{.Path}}}}' 2>/dev/null)"
python3 - <<'EOF'
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1)
for _ in range(20):
    try:
        s.sendto(b"hello", ("127.0.0.1", 17001))
        print("ANSWER", s.recvfrom(100)[0].decode())
        break
    except (TimeoutError, ConnectionRefusedError):
        time.sleep(0.5)
EOF
"""


def test_bootstrap_on_a_pristine_debian_12_installs_everything_the_project_calls() -> None:
    env = dict(os.environ)
    subprocess.run(["podman", "rm", "-f", "-t", "0", NAME], capture_output=True, env=env, check=False)
    script = SCRIPT.format(called=" ".join(CALLED), echo=ECHO.strip())
    try:
        proc = subprocess.run(
            ["podman", "run", "--name", NAME, "--privileged", "--cgroupns=private", "-v", f"{ROOT}:/src:ro",
             IMAGE, "bash", "-c", script],
            capture_output=True, text=True, env=env, timeout=900, check=False,
        )  # fmt: skip
    finally:
        subprocess.run(["podman", "rm", "-f", "-t", "0", NAME], capture_output=True, env=env, check=False)
    out = proc.stdout + proc.stderr
    assert "installing system packages:" in out, out[-3000:]  # the image is pristine: bootstrap had work to do
    assert "CALLED_OK" in out, out[-3000:]
    assert "INIT true /run/podman-init" in out, out[-3000:]  # --init: catatonit ran as the container's PID 1
    assert "ANSWER echo:hello" in out, out[-3000:]  # the published UDP port (netavark + iptables) answered
    assert proc.returncode == 0, out[-3000:]
