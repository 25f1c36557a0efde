# Copyright: godot-fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the godot_server role reads on a game host: C library, APT lists, releases, room units.

Runs on game hosts: Python 3.9 and the standard library only. Commands are run through a callable the caller
gives (the module's run_command), so nothing here starts a process itself.
"""

from __future__ import annotations

import glob
import json
import os
import re
from typing import Any, Callable

SHOW_PROPERTIES = ("Id", "ActiveState", "UnitFileState", "LoadState")

# Runs a command given as an argument list and returns its standard output.
Runner = Callable[[list[str]], str]


def libc_version() -> str:
    """Version of the GNU C library this Python runs on ('2.36'), empty for another C library (musl)."""
    try:
        value = os.confstr("CS_GNU_LIBC_VERSION") or ""
    except (ValueError, OSError):
        return ""
    return value.split()[-1] if value.startswith("glibc") else ""


def apt_lists_present(lists_dir: str = "/var/lib/apt/lists") -> bool:
    return bool(glob.glob(os.path.join(lists_dir, "*_Packages*")))


def current_release(install_dir: str) -> str:
    """Target of the install directory's current link, empty when there is none."""
    link = os.path.join(install_dir, "current")
    return os.readlink(link) if os.path.islink(link) else ""


def read_marker(install_dir: str, release: str, marker: str) -> dict[str, Any]:
    if not release:
        return {}
    try:
        with open(os.path.join(install_dir, "releases", release, marker)) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def list_releases(install_dir: str) -> list[str]:
    """Installed release directories, newest first (by modification time)."""
    base = os.path.join(install_dir, "releases")
    try:
        entries = [e for e in os.scandir(base) if e.is_dir(follow_symlinks=False)]
    except OSError:
        return []
    entries.sort(key=lambda e: (e.stat(follow_symlinks=False).st_mtime, e.name), reverse=True)
    return [e.path for e in entries]


def _unit_pattern(service_name: str) -> re.Pattern[str]:
    return re.compile(rf"^{re.escape(service_name)}@(\d+)\.service$")


def enabled_ports(service_name: str, unit_dir: str = "/etc/systemd/system") -> set[int]:
    """Ports of the room units enabled in unit_dir (the *.wants links)."""
    pattern = _unit_pattern(service_name)
    ports = set()
    for path in glob.glob(os.path.join(unit_dir, "*.wants", f"{service_name}@*.service")):
        match = pattern.match(os.path.basename(path))
        if match:
            ports.add(int(match.group(1)))
    return ports


def parse_list_units(output: str, service_name: str) -> set[int]:
    """Ports of the room units in `systemctl list-units --plain --no-legend` output."""
    pattern = _unit_pattern(service_name)
    ports = set()
    for line in output.splitlines():
        fields = line.split()
        match = pattern.match(fields[0]) if fields else None
        if match:
            ports.add(int(match.group(1)))
    return ports


def parse_show(output: str, service_name: str) -> dict[str, dict[str, str]]:
    """Parse `systemctl show -p ...` output for several units (blocks separated by blank lines)."""
    pattern = _unit_pattern(service_name)
    rooms: dict[str, dict[str, str]] = {}
    for block in output.strip().split("\n\n"):
        props = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        match = pattern.match(props.get("Id", ""))
        if match:
            rooms[match.group(1)] = {
                "active": props.get("ActiveState", ""),
                "enabled": props.get("UnitFileState", ""),
                "loaded": props.get("LoadState", ""),
            }
    return rooms


def room_states(
    service_name: str,
    wanted: list[int],
    systemctl: str | None,
    run: Runner,
    unit_dir: str = "/etc/systemd/system",
) -> dict[str, dict[str, str]]:
    """Port (as a string) -> active, enabled and loaded state of every room unit wanted, enabled or loaded.

    systemctl is the path of systemctl (None on a host without systemd: no rooms).
    """
    if not systemctl:
        return {}
    listed = run(
        [systemctl, "list-units", "--all", "--plain", "--no-legend", "--type=service", f"{service_name}@*.service"]
    )
    ports = sorted(set(wanted) | enabled_ports(service_name, unit_dir) | parse_list_units(listed, service_name))
    if not ports:
        return {}
    shown = run(
        [systemctl, "show", *(f"-p{p}" for p in SHOW_PROPERTIES), *(f"{service_name}@{p}.service" for p in ports)]
    )
    return parse_show(shown, service_name)


def host_state(
    install_dir: str,
    service_name: str,
    ports: list[int],
    release: str,
    marker: str,
    systemctl: str | None,
    run: Runner,
) -> dict[str, Any]:
    """Everything the godot_server role decides on, read in one go (the godot_server_state module's result)."""
    return {
        "glibc": libc_version(),
        "apt_lists": apt_lists_present(),
        "current": current_release(install_dir),
        "marker": read_marker(install_dir, release, marker),
        "releases": list_releases(install_dir),
        "rooms": room_states(service_name, ports, systemctl, run),
    }
