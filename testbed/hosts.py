"""Local systemd containers standing in for cloud machines (testbed.aws, testbed.azure).

A stand-in shares this machine's network namespace, so the local cloud emulators on 127.0.0.1 are reachable at
the same URLs as from the controller, and has its own UTS namespace and systemd as PID 1, like a VM.
"""

from __future__ import annotations

import os
import subprocess
import time

IMAGE = os.environ.get("GF_IMAGE_PREFIX", "localhost/godot-fleet") + "/host:bookworm"


def podman(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["podman", *args], capture_output=True, text=True, check=check)


def start(name: str, image: str = IMAGE) -> None:
    """Starts the container `name`, or reuses it if it answers, and waits until its systemd is up.

    A container that does not answer is replaced: after a reboot podman may still report a container running that
    is gone, and `podman start` cannot revive it.
    """
    if podman("exec", name, "true", check=False).returncode != 0:
        podman(
            "run", "-d", "--replace", "--name", name, "--network", "host", "--uts", "private", "--hostname", name,
            "--systemd", "always", "--cap-add", "SYS_ADMIN", image, "/lib/systemd/systemd",
        )  # fmt: skip
    for _ in range(100):
        state = podman("exec", name, "systemctl", "is-system-running", check=False).stdout.strip()
        if state in ("running", "degraded"):
            return
        time.sleep(0.2)
    raise RuntimeError(f"systemd in {name} did not come up")


def run_in(name: str, script: str, stdin: str) -> None:
    """Runs a shell script in the container, with `stdin` as its input."""
    subprocess.run(["podman", "exec", "-i", name, "sh", "-c", script], input=stdin, text=True, check=True,
                   capture_output=True)  # fmt: skip


def remove(name: str) -> None:
    podman("rm", "-f", "-t", "5", name, check=False)
