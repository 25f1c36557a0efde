"""The test bed of godot-fleet: everything the tests, the demos and the benchmarks need to run this collection
offline, in one package.

- `testbed.playbook`: run a playbook (from this checkout or from the installed collection) and read its result as
  JSON (the ansible.posix.json callback), never by scraping the recap text.
- `testbed.aws`: the local AWS (moto on loopback, completed where the Ansible modules need it, plus the stand-in for
  the instance metadata service) and the containers standing in for EC2 instances.
- `testbed.azure` and `testbed.arm_double`: the local Azure (the ARM test double, Azurite, the managed-identity
  stand-in) and the containers standing in for VMs.
- `testbed.hosts`: the local systemd containers themselves.
- `testbed.enet_probe`: the ENet client that proves a Godot room answers.
- `testbed.demo`: the demo game's build in dist/ and a real Godot client of it.

It is installed into the project venv in editable mode (scripts/venv.sh), so `import testbed` works from the tests,
the benchmarks and `python -m testbed.aws ...` alike, without path manipulation. It is never part of the collection.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import socket
import tarfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

#: The checkout this test bed belongs to (the collection's root).
ROOT = Path(__file__).resolve().parent.parent
# The project's podman settings (the storage and network of the local containers) for this process and every child
# it starts, unless the caller has its own: what scripts/env.sh does for the shell, done once here.
os.environ.setdefault("CONTAINERS_CONF", str(ROOT / "scripts" / "containers.conf"))


def role_defaults(role: str | Path) -> dict[str, Any]:
    """A role's defaults/main.yml (a role name of this collection, or a role directory), read as Ansible reads it:
    `!unsafe` marks a string that Ansible must not template."""
    import yaml

    class Loader(yaml.SafeLoader):  # type: ignore[misc]
        pass

    Loader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))
    directory = ROOT / "roles" / role if isinstance(role, str) else role
    data: dict[str, Any] = yaml.load((directory / "defaults" / "main.yml").read_text(), Loader=Loader)
    return data


class _QuietFiles(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def serve_files(directory: Path, port: int = 0) -> Iterator[str]:
    """`directory` over HTTP on 127.0.0.1 (`port`, or one the kernel picks) for the block: an artifact store the
    game hosts download builds from; yields its URL."""
    handler = functools.partial(_QuietFiles, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def extract_all(
    archive: tarfile.TarFile, destination: Path, extraction_filter: Literal["data", "tar"] = "data"
) -> None:
    """archive.extractall(destination) with the named extraction filter where this Python has the filters (3.11.4+;
    Debian 12's python3 is 3.11.2 without them): our own archives, the filter only guards against mistakes."""
    if hasattr(tarfile, "data_filter"):
        archive.extractall(destination, filter=extraction_filter)
    else:
        archive.extractall(destination)


def port_free(port: int) -> bool:
    """Whether a TCP port on loopback can be bound (a port in TIME_WAIT counts as free, as servers reuse it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_block(size: int, avoid: Sequence[int] = ()) -> int:
    """A loopback TCP port P with P..P+size-1 free, chosen by the kernel, none of them in `avoid`."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
        block = range(port, port + size)
        if port + size <= 65535 and not any(p in block for p in avoid) and all(port_free(p) for p in block[1:]):
            return port
    raise RuntimeError(f"no block of {size} free loopback ports")
