"""The AWX execution environment (execution-environment.yml, built by `make ee` with ansible-builder on the Debian
base scripts/images.sh makes): what a job run in it finds, checked offline (`podman run --rm --network=none`).

The image is the one of this checkout's recipe: `scripts/ee.sh --print-image` names it, the single place that does
(a test that runs jobs in the image asks it the same way). A missing image fails here with the command that builds
it; nothing is skipped.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from bindep.depends import Depends
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from testbed import ROOT

COLLECTION = "/usr/share/ansible/collections/ansible_collections/godot_fleet/fleet"
LAMBDA_ARTIFACT = os.environ.get("GF_ROOM_API_ARTIFACT", "roles/aws_rooms_api/files/room-api-lambda.zip")
DEFINITION = yaml.safe_load((ROOT / "execution-environment.yml").read_text())
# what the image holds on disk, with the Azure SDK that azure.azcollection pins (about 2.1 GB): a leak of the pip
# download cache into a layer (about 0.5 GB) or a second copy of the packages would pass it
MAX_IMAGE_BYTES = 2_400_000_000
# the certificate authorities this machine adds to Debian's (a TLS-inspecting proxy's, for example)
LOCAL_CAS = Path("/usr/local/share/ca-certificates")

# Run inside the image: the requirement lines given, and the Azure SDK list of the azure.azcollection bundled in the
# installed `ansible` package, checked against the installed distributions; prints the unmet ones as JSON.
CHECK_REQUIREMENTS = """
import importlib.metadata, json, pathlib, sys
import ansible_collections.azure.azcollection as azcollection
from packaging.requirements import Requirement
azure = (pathlib.Path(list(azcollection.__path__)[0]) / "requirements.txt").read_text().splitlines()
unmet = []
for line in sys.argv[1:] + azure:
    line = line.split("#", 1)[0].strip()
    if not line:
        continue
    req = Requirement(line)
    if req.marker and not req.marker.evaluate():
        continue
    try:
        version = importlib.metadata.version(req.name)
    except importlib.metadata.PackageNotFoundError:
        unmet.append(f"{req}: not installed")
        continue
    if not req.specifier.contains(version, prereleases=True):
        unmet.append(f"{req}: {version} installed")
print(json.dumps({"unmet": unmet, "azure": len(azure)}))
"""

# A trivial job as AWX hands it to the image: ansible-runner with a private data directory (project + inventory),
# a module of this collection on localhost (interpreter discovery as for any host, no ansible_python_interpreter),
# then the discovered Python importing what the cloud modules need. Prints the runner's status and the task results.
RUN_JOB = """set -eu
mkdir -p /tmp/job/project /tmp/job/inventory
cat >/tmp/job/project/site.yml
echo 'localhost ansible_connection=local' >/tmp/job/inventory/hosts
ansible-runner run /tmp/job -p site.yml >/tmp/job/stdout 2>&1 || true
python3 - <<'EOF'
import glob, json
events = [json.load(open(path)) for path in glob.glob("/tmp/job/artifacts/*/job_events/*.json")]
ends = ("runner_on_ok", "runner_on_failed", "runner_on_unreachable")
results = {e["event_data"]["task"]: e["event_data"]["res"] for e in events if e["event"] in ends}
status = open(glob.glob("/tmp/job/artifacts/*/status")[0]).read().strip()
print(json.dumps({"status": status, "results": results, "stdout": open("/tmp/job/stdout").read()[-3000:]}))
EOF
"""
PLAYBOOK = """
- name: A module of godot_fleet.fleet in the execution environment
  hosts: all
  gather_facts: false
  tasks:
    - name: Inspect an executable
      godot_fleet.fleet.godot_build_info:
        path: /usr/bin/python3
    - name: Import the cloud SDKs with the discovered Python
      ansible.builtin.command:
        argv: ["{{ ansible_facts.discovered_interpreter_python }}", "-c",
               "import boto3, azure.mgmt.compute, azure.storage.blob, azure.identity; print('sdk ok')"]
      changed_when: false
"""


def ee_image() -> str:
    """This checkout's execution environment image, as scripts/ee.sh names it."""
    proc = subprocess.run(
        [str(ROOT / "scripts" / "ee.sh"), "--print-image"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.strip()


@pytest.fixture(scope="module")
def image() -> str:
    name = ee_image()
    if subprocess.run(["podman", "image", "exists", name], check=False).returncode != 0:
        pytest.fail(f"{name} (this checkout's execution environment) is not built: run `make ee` (make test does)")
    return name


def in_ee(image: str, *command: str, user: str | None = None, stdin: str | None = None) -> str:
    """Run a command in the image offline; its stdout (a failure shows stderr)."""
    options = ["--user", user] if user else []
    proc = subprocess.run(
        ["podman", "run", "--rm", "-i", "--network=none", *options, image, *command],
        input=stdin or "", capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, f"{command}: {proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def pinned(requirements: Path, name: str) -> str:
    """The `name==version` line of a requirements file."""
    lines = [line.split("#")[0].strip() for line in requirements.read_text().splitlines()]
    found = [line for line in lines if re.fullmatch(rf"{re.escape(name)}==\S+", line)]
    assert len(found) == 1, f"{requirements.name} pins {name} {len(found)} times"
    return found[0]


def test_the_definition_pins_what_the_project_pins() -> None:
    dependencies = DEFINITION["dependencies"]
    assert DEFINITION["version"] == 3
    assert dependencies["ansible_core"]["package_pip"] == pinned(ROOT / "requirements.txt", "ansible-core")
    assert dependencies["ansible_runner"]["package_pip"] == pinned(ROOT / "requirements-dev.txt", "ansible-runner")
    assert dependencies["system"] == "bindep.txt"
    # the base scripts/images.sh ee-base makes, and ansible-builder's own dnf path (the real dnf on an RPM base)
    prefix = os.environ.get("GF_IMAGE_PREFIX", "localhost/godot-fleet")
    assert DEFINITION["images"]["base_image"]["name"] == f"{prefix}/ee-base:bookworm"
    assert DEFINITION["options"]["package_manager_path"] == "/usr/bin/dnf"


def test_a_users_base_image_and_package_manager_are_build_arguments(tmp_path: Path) -> None:
    """README.md tells AWX users to build on their own base (awx-ee, UBI) with --build-arg EE_BASE_IMAGE=..."""
    ee_image()  # writes the inputs the definition reads from .cache/ee/
    builder = Path(sys.executable).parent / "ansible-builder"
    proc = subprocess.run(
        [str(builder), "create", "--file", "execution-environment.yml", "--context", str(tmp_path / "context")],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    containerfile = (tmp_path / "context" / "Containerfile").read_text()
    base = DEFINITION["images"]["base_image"]["name"]
    for line in [f'ARG EE_BASE_IMAGE="{base}"', "FROM $EE_BASE_IMAGE AS base", 'ARG PKGMGR="/usr/bin/dnf"',
                 'ARG PYCMD="/usr/bin/python3"']:  # fmt: skip
        assert line in containerfile.splitlines(), line
    assert "No matches" not in proc.stdout + proc.stderr  # every additional build file was there


def test_on_an_rpm_base_bindep_asks_for_the_rpm_packages() -> None:
    rules = Depends((ROOT / "bindep.txt").read_text())
    assert [rule[0] for rule in rules.active_rules(["platform:rpm", "platform:redhat", "default"])] == [
        "python3", "openssh-clients",
    ]  # fmt: skip
    assert [rule[0] for rule in rules.active_rules(["platform:dpkg", "platform:debian", "default"])] == [
        "python3", "python3-venv", "openssh-client",
    ]  # fmt: skip


def test_the_collections_are_installed_at_the_versions_the_collection_needs(image: str) -> None:
    listing = json.loads(in_ee(image, "ansible-galaxy", "collection", "list", "--format", "json"))
    installed = {name: (path, info["version"]) for path, collections in listing.items()
                 for name, info in collections.items()}  # fmt: skip
    galaxy = yaml.safe_load((ROOT / "galaxy.yml").read_text())
    assert installed["godot_fleet.fleet"] == ("/usr/share/ansible/collections/ansible_collections", galaxy["version"])
    required = yaml.safe_load((ROOT / "collections" / "requirements.yml").read_text())["collections"]
    assert {c["name"] for c in required} >= {"amazon.aws", "azure.azcollection", "community.aws",
                                              "community.general", "containers.podman"}  # fmt: skip
    for collection in required:
        version = installed[collection["name"]][1]
        spec = collection.get("version", "*")
        assert spec == "*" or SpecifierSet(spec.replace(" ", "")).contains(Version(version)), (collection, version)


def test_python_has_the_requirements_and_the_azure_sdk_of_azure_azcollection(image: str) -> None:
    lines = [
        *(ROOT / "requirements.txt").read_text().splitlines(),
        DEFINITION["dependencies"]["ansible_runner"]["package_pip"],
    ]
    report = json.loads(in_ee(image, "/usr/bin/python3", "-c", CHECK_REQUIREMENTS, *lines))
    assert report["unmet"] == [] and report["azure"] > 10, report
    out = in_ee(image, "/usr/bin/python3", "-c",
                "import boto3, botocore, azure.mgmt.compute, azure.mgmt.network, azure.storage.blob, azure.identity,"
                " azure.mgmt.resource, ansible_runner; print('ok')")  # fmt: skip
    assert out.strip() == "ok"
    runner = DEFINITION["dependencies"]["ansible_runner"]["package_pip"].split("==")[1]
    assert in_ee(image, "ansible-runner", "--version").strip() == runner


def test_ansible_doc_documents_the_collections_modules(image: str) -> None:
    doc = json.loads(in_ee(image, "ansible-doc", "--json", "-t", "module", "godot_fleet.fleet.room_probe"))
    assert doc["godot_fleet.fleet.room_probe"]["doc"]["module"] == "room_probe"


def test_the_room_api_lambda_artifact_is_in_the_installed_collection(image: str) -> None:
    # scripts/ee.sh --print-image rebuilt the checkout's artifact (reproducible): the image holds the same bytes
    inside = in_ee(image, "sha256sum", f"{COLLECTION}/{LAMBDA_ARTIFACT}").split()[0]
    assert inside == hashlib.sha256((ROOT / LAMBDA_ARTIFACT).read_bytes()).hexdigest()


def test_the_ssh_client_is_there(image: str) -> None:
    assert in_ee(image, "sh", "-c", "command -v ssh && command -v ssh-keygen").split() == [
        "/usr/bin/ssh", "/usr/bin/ssh-keygen",
    ]  # fmt: skip


def test_a_job_runs_a_module_of_the_collection_with_the_discovered_python(image: str) -> None:
    job = json.loads(in_ee(image, "sh", "-c", RUN_JOB, stdin=PLAYBOOK))
    assert job["status"] == "successful", job["stdout"]
    build = job["results"]["Inspect an executable"]
    assert build["elf"] and build["architecture"] == os.uname().machine, build
    # one Python in the image: what discovery finds is /usr/bin/python3 (python3.11 is the same file) with the SDKs
    assert build["ansible_facts"]["discovered_interpreter_python"] in ("/usr/bin/python3", "/usr/bin/python3.11")
    assert job["results"]["Import the cloud SDKs with the discovered Python"]["stdout"] == "sdk ok"
    pythons = in_ee(image, "sh", "-c", "ls /usr/bin/python3* /usr/local/bin/python3* 2>/dev/null; true").split()
    assert sorted(pythons) == ["/usr/bin/python3", "/usr/bin/python3.11"], pythons


def test_no_build_leftovers_secrets_or_caches(image: str) -> None:
    leftovers = in_ee(image, "sh", "-c",
                      "ls -d /output /build /tmp/* /root/.cache /root/.ansible /runner/.cache /etc/pip.conf"
                      " /var/lib/apt/lists/* /var/cache/apt/archives/*.deb /var/cache/apt/*.bin 2>/dev/null;"
                      " find / -xdev -name '*.whl' -not -path '*/share/python-wheels/*' 2>/dev/null; true",
                      user="0")  # fmt: skip
    assert leftovers.split() == []
    # the build mounted this machine's CA bundle over the base's (scripts/ee.sh): the image keeps Debian's own
    bundle = re.sub(r"\s", "", in_ee(image, "cat", "/etc/ssl/certs/ca-certificates.crt"))
    local = [re.sub(r"\s|-----[A-Z ]+-----", "", pem.read_text()) for pem in LOCAL_CAS.glob("*.crt")]
    assert not [ca for ca in local if ca and ca in bundle]
    inspect = json.loads(subprocess.run(["podman", "image", "inspect", image], capture_output=True, text=True,
                                        check=True).stdout)[0]  # fmt: skip
    names = [variable.split("=")[0] for variable in inspect["Config"]["Env"]]
    assert not [n for n in names if re.search("TOKEN|SECRET|PASSWORD|KEY|CREDENTIAL", n)], names
    assert inspect["Config"]["Labels"]["ansible-execution-environment"] == "true"
    assert inspect["Config"]["User"] == "1000"  # AWX's execution environments run as 1000, not root
    assert inspect["Size"] < MAX_IMAGE_BYTES, inspect["Size"]
