"""Unmodified azure.azcollection modules against the ARM test double (testbed/arm_double) and Azurite.

testbed/arm_double/smoke_playbook.yml creates a resource group, a private storage account + container (+ a blob in
Azurite), an NSG, a virtual network + subnet, a static public IP, a NIC, an Ubuntu VM with a system-assigned
identity, a role assignment on the container and a service SAS; a second run must change nothing and write nothing;
the azure_rm inventory plugin (POST /batch) must list the VM; deleting in reverse twice, then the group twice, must
end with nothing left. About 4 minutes: every Azure task costs 3-5 s of SDK import and login.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from testbed import ROOT, playbook

PLAYBOOK = ROOT / "testbed" / "arm_double" / "smoke_playbook.yml"
ACCOUNT = "gfsmokeblobs"
STORAGE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
CREDENTIALS = {
    "AZURE_SUBSCRIPTION_ID": "00000000-0000-0000-0000-000000000000",
    "AZURE_TENANT": "11111111-1111-1111-1111-111111111111",
    "AZURE_CLIENT_ID": "22222222-2222-2222-2222-222222222222",
    "AZURE_SECRET": "not-a-secret",
}
# Calls that read (or only compute: keys, SAS, tokens) and so may happen on a converged re-run.
READS = {"GET", "HEAD"}
READ_ONLY_POSTS = ("/listKeys", "/ListServiceSas", "/oauth2/v2.0/token")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for_port(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


def azurite_binary() -> Path:
    """Azurite from the project cache (scripts/node.sh installs it; make test runs that first)."""
    binary = ROOT / ".cache" / "node" / "node_modules" / ".bin" / "azurite-blob"
    assert binary.exists(), f"Azurite is missing ({binary}): run scripts/node.sh"
    return binary


@pytest.fixture(scope="module")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = azurite_binary()
    port = free_port()
    data = tmp_path_factory.mktemp("azurite")
    env = dict(os.environ, AZURITE_ACCOUNTS=f"{ACCOUNT}:{STORAGE_KEY}")
    proc = subprocess.Popen(
        [
            str(binary),
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(port),
            "--disableTelemetry",
            "--location",
            str(data),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@pytest.fixture(scope="module")
def double(azurite: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The double as the command line starts it; yields the environment its clients need."""
    work = tmp_path_factory.mktemp("arm-double")
    command = [sys.executable, "-m", "testbed.arm_double", "--port", "0", "--ca-dir", str(work / "ca")]
    proc = subprocess.Popen(
        [*command, "--blob-endpoint", azurite, "--storage-key", STORAGE_KEY],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        env: dict[str, str] = {}
        for line in proc.stdout:
            if line.startswith("READY"):
                break
            name, _, value = line.strip().partition("=")
            env[name] = value
        assert "HTTPS_PROXY" in env, "the double did not start"
        env["inspect"] = env["HTTPS_PROXY"]
        yield env
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def inspect(env: dict[str, str], path: str, method: str = "GET") -> Any:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(f"{env['inspect']}/_double/{path}", method=method)
    with opener.open(request, timeout=10) as response:
        return json.load(response)


def client_env(env: dict[str, str]) -> dict[str, str]:
    values = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    values.update({k: v for k, v in env.items() if k.isupper()})
    values.update(CREDENTIALS)
    values["ANSIBLE_CONFIG"] = str(ROOT / "ansible.cfg")
    return values


def smoke(env: dict[str, str], azurite: str, *extra: str) -> playbook.Result:
    values = {"ansible_python_interpreter": sys.executable, "smoke_blob_endpoint": azurite}
    return playbook.run(PLAYBOOK, values, "-c", "local", *extra, env=client_env(env))


def writes(log: list[dict[str, Any]]) -> list[str]:
    return [
        f"{r['method']} {r['path']}"
        for r in log
        if r["method"] not in READS and r["method"] != "CONNECT" and not r["path"].endswith(READ_ONLY_POSTS)
    ]


def test_modules_create_rerun_unchanged_and_delete(double: dict[str, str], azurite: str, tmp_path: Path) -> None:
    result = smoke(double, azurite, "-e", "smoke_state=present")
    assert result.ok, str(result)
    assert result.changed == 11 and result.stats["localhost"]["failed"] == 0, result.changed_tasks() or str(result)
    resources = {r["type"] for r in inspect(double, "resources")["value"]}
    assert {
        "Microsoft.Compute/virtualMachines",
        "Microsoft.Compute/disks",
        "Microsoft.Authorization/roleAssignments",
    } <= resources

    inspect(double, "requests", "DELETE")
    result = smoke(double, azurite, "-e", "smoke_state=present")
    assert result.ok and result.changed == 0, result.changed_tasks() or str(result)
    assert writes(inspect(double, "requests")["value"]) == []

    inventory = tmp_path / "smoke.azure_rm.yml"
    inventory.write_text(
        "plugin: azure.azcollection.azure_rm\nauth_source: env\ninclude_vm_resource_groups: [gf-smoke]\n"
    )
    hosts = playbook.inventory(inventory, client_env(double))["_meta"]["hostvars"]
    [(name, host)] = hosts.items()
    assert name.startswith("gf-smoke-vm")
    assert re.search(r"203\.0\.113\.\d+", json.dumps(host["ansible_host"]))
    assert any(r.get("batch") for r in inspect(double, "requests")["value"])

    for expected in (8, 0):  # every module's absent path, the group kept: the second run finds nothing to do
        result = smoke(double, azurite, "-e", "smoke_state=absent", "-e", "smoke_keep_group=true")
        assert result.ok and result.changed == expected, result.changed_tasks() or str(result)
    for expected in (1, 0):  # then the group itself
        result = smoke(double, azurite, "-e", "smoke_state=absent")
        assert result.ok and result.changed == expected, result.changed_tasks() or str(result)
    assert inspect(double, "resources")["value"] == []
