"""A real AWX on loopback (testbed.awx) configured by configure-awx.yml (twice: the second run changes nothing; and in
check mode, which writes nothing), whose deploy hosts and deploy AWS job templates and deploy-and-verify workflow
run to `successful` with the rooms answering a real client, and which refuses a survey answer out of range before
any job; and the receptor stand-in spoken to by receptorctl, the client AWX uses.

AWX is the real one, from the sources of GF_AWX_SOURCES (without them this tier is reported as NOT RUN, or fails
under CI=true). Receptor is NOT: jobs go through testbed.receptor_standin, a stand-in for receptor's control socket
on a single node (no mesh, TLS or work signing), which runs `ansible-runner worker` as receptor's `local` work
type; the job's playbook runs in the execution environment image (`make ee`, testbed.awx_job.ee_image()) with podman,
on the host network so that it reaches this machine's loopback. The local AWS's address reaches the jobs through
AWX's AWX_TASK_ENV setting: the emulator's only difference.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from testbed import ROOT, demo, free_port_block, hosts, playbook, role_defaults, serve_files
from testbed.aws import CREDENTIALS as AWS_KEYS
from testbed.aws import LocalAws, local_aws
from testbed.aws import host_up as aws_host_up
from testbed.awx import NODE, LocalAwx, local_awx
from testbed.awx_fleet import JOB_DIST, PREFIX, Fleet, hosts_answers
from testbed.awx_job import SshHost, ee_image, ssh_host
from testbed.awx_sources import sources_or_skip

HOST, HOST_PORTS = "gf-awx-real-host", [13591, 13592]
AWS_NAME, AWS_HOST, AWS_PORTS = "gf-awx-real", "gf-awx-real-aws-0", [13593]
REGION = "eu-west-1"
PROBE_TASK = "Check that every room answers a Godot client (ENet handshake), from the controller"
HEALTH_TASK = "Check that every room completes a client's ENet handshake"


@pytest.fixture(scope="module")
def awx() -> Iterator[LocalAwx]:
    sources_or_skip()
    image = ee_image()
    found = subprocess.run(["podman", "image", "exists", image], check=False)
    assert found.returncode == 0, f"the execution environment image {image} is missing: `make ee` builds it"
    with local_awx(image) as started:
        print(
            f"local AWX: {'cold' if started.cold else 'warm'} start {started.start_seconds:.1f} s {started.phases}, "
            f"RSS {started.rss_bytes() / 2**20:.0f} MB {started.rss_by_service()}",
            file=sys.stderr,
        )
        yield started
        assert not started.exited(), f"AWX services exited while the tests ran: {started.exited()}, see {started.logs}"


@pytest.fixture(scope="module")
def aws() -> Iterator[LocalAws]:
    with local_aws(free_port_block(1)) as server:
        yield server


@pytest.fixture(scope="module")
def fleet(awx: LocalAwx, aws: LocalAws, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """configure-awx.yml applied to the real AWX as an admin would (testbed.awx_fleet): a manual project, the
    execution environment image, credentials created from variables (a Machine key for the game hosts, an AWS key
    for the local AWS); its first run is kept in FIRST."""
    prepared = Fleet.prepare(awx, tmp_path_factory.mktemp("awx-real-keys"), aws.endpoint)
    FIRST.append(prepared.configure())
    try:
        yield prepared
    finally:
        prepared.remove_hosts()


FIRST: list[playbook.Result] = []


def test_configure_awx_is_idempotent_and_check_mode_writes_nothing(fleet: Fleet, installed_collection: Path) -> None:
    (first,) = FIRST
    assert first.ok, str(first)
    assert first.changed > 0, str(first)
    # the second run from the installed collection (godot_fleet.fleet.configure_awx), as a Galaxy user runs it
    again = fleet.configure(installed=installed_collection)
    assert again.ok and again.changed == 0, f"a second run changed {again.changed_tasks()}"
    # check mode with a setting changed: it reports the change, and the controller keeps what it had
    preview = fleet.configure("--check", awx_configuration_aws_regions=["us-east-1"])
    assert preview.ok, str(preview)
    assert "Inventory sources" in {t.split(": ")[-1] for t in preview.changed_tasks()}, preview.changed_tasks()
    source = fleet.awx.find("inventory_sources", f"{PREFIX} AWS EC2")
    assert yaml.safe_load(source["source_vars"])["regions"] == ["eu-west-1"]
    templates = fleet.awx.api(f"job_templates/?name__startswith={PREFIX}&page_size=100")["results"]
    catalogue = role_defaults("awx_configuration")["awx_configuration_job_templates"]
    assert sorted(t["name"] for t in templates) == sorted(f"{PREFIX} {t['name']}" for t in catalogue)
    deploy = fleet.awx.find("job_templates", f"{PREFIX} deploy hosts")
    survey = fleet.awx.api(f"job_templates/{deploy['id']}/survey_spec/")
    assert [q["variable"] for q in survey["spec"]] == [
        "godot_server_version", "godot_server_checksum", "godot_server_url", "godot_server_max_players"
    ]  # fmt: skip


@pytest.fixture(scope="module")
def served() -> Iterator[str]:
    """dist/ over HTTP on 127.0.0.1: where the game hosts download the build from."""
    with serve_files(ROOT / "dist") as url:
        yield url


@pytest.fixture(scope="module")
def game_host(fleet: Fleet) -> SshHost:
    """A game host in the `godot-fleet hosts` inventory, reached with the Machine credential."""
    return fleet.add_game_host(HOST)


def test_deploy_hosts_job_template_serves_players(fleet: Fleet, game_host: SshHost, served: str) -> None:
    awx = fleet.awx
    job = awx.launch("job_templates", f"{PREFIX} deploy hosts", hosts_answers(served, HOST_PORTS))
    assert job["status"] == "successful", f"{job['status']}: {awx.stdout(job)[-4000:]}"
    assert job["execution_node"] == NODE and job["work_unit_id"], job
    assert [e["host_name"] for e in awx.ok_events(job, HEALTH_TASK)] == [HOST]
    demo.assert_rooms_serve_clients(HOST_PORTS)


def test_a_survey_answer_out_of_range_is_refused_before_any_job(fleet: Fleet, served: str) -> None:
    awx = fleet.awx
    before = awx.api("unified_jobs/?page_size=1")["count"]
    template = awx.find("job_templates", f"{PREFIX} deploy hosts")
    with pytest.raises(urllib.error.HTTPError) as refused:
        awx.api(f"job_templates/{template['id']}/launch/",
                {"extra_vars": {**hosts_answers(served, HOST_PORTS), "godot_server_max_players": 5000}})  # fmt: skip
    assert refused.value.code == 400
    assert "godot_server_max_players" in refused.value.read().decode()
    assert awx.api("unified_jobs/?page_size=1")["count"] == before


def test_deploy_and_verify_workflow(fleet: Fleet, game_host: SshHost, served: str) -> None:
    """The workflow: deploy hosts (a re-run: nothing changes), then verify rooms probes them with a real client."""
    awx = fleet.awx
    workflow = awx.launch(
        "workflow_job_templates", f"{PREFIX} deploy and verify hosts", hosts_answers(served, HOST_PORTS)
    )
    assert workflow["status"] == "successful", workflow
    nodes = awx.api(f"workflow_jobs/{workflow['id']}/workflow_nodes/")["results"]
    jobs = {n["summary_fields"]["job"]["name"]: n["summary_fields"]["job"] for n in nodes}
    assert {j: jobs[j]["status"] for j in jobs} == {
        f"{PREFIX} deploy hosts": "successful", f"{PREFIX} verify rooms": "successful"
    }  # fmt: skip
    verify = jobs[f"{PREFIX} verify rooms"]
    assert [e["host_name"] for e in awx.ok_events(verify, PROBE_TASK)] == [HOST]
    demo.assert_rooms_serve_clients(HOST_PORTS)


def test_deploy_aws_job_template_serves_players(fleet: Fleet, aws: LocalAws) -> None:
    """deploy AWS with the AWS and Machine credentials against the local AWS; the instance is a container with
    sshd (instance 0 mapped to it), which fetches the build from S3 with its instance role."""
    awx = fleet.awx
    hosts.remove(AWS_HOST)
    try:
        host = ssh_host(AWS_HOST, free_port_block(1), fleet.public_key)
        aws_host_up(AWS_HOST, aws.endpoint, AWS_NAME, 0, REGION)
        archive, release = demo.build()
        answers = {
            "godot_fleet_name": AWS_NAME,
            "godot_fleet_aws_instance_count": 1,
            "godot_server_version": release,
            "godot_server_max_players": 8,
            "godot_fleet_aws_region": REGION,
            "godot_fleet_aws_bucket": f"{AWS_NAME}-builds",
            "godot_fleet_aws_ami_id": "ami-12c6146b",
            "godot_fleet_admin_cidr": "198.51.100.7/32",
            "godot_fleet_ssh_public_key": fleet.public_key,
            # the job's project directory (the manual project, with the demo build copied in)
            "godot_fleet_build_file": f"{JOB_DIST}/{archive.name}",
            "godot_server_ports": AWS_PORTS,
            "godot_fleet_aws_host_overrides": [host.hostvars()],
            **demo.PORTABLE_ROOMS,
        }
        job = awx.launch("job_templates", f"{PREFIX} deploy AWS", answers)
        assert job["status"] == "successful", f"{job['status']}: {awx.stdout(job)[-4000:]}"
        assert AWS_KEYS["AWS_SECRET_ACCESS_KEY"] not in awx.stdout(job)
        healthy = [e["host_name"] for e in awx.ok_events(job, HEALTH_TASK)]
        assert len(healthy) == 1 and healthy[0].startswith("i-"), healthy
        demo.assert_rooms_serve_clients(AWS_PORTS)
    finally:
        hosts.remove(AWS_HOST)


RECEPTORCTL_SESSION = """\
import io, json, sys, time
from receptorctl.socket_interface import ReceptorControl

sock = sys.argv[1]
ctl = ReceptorControl(sock)
out = {"node": ctl.simple_command("status")["Advertisements"][0]["NodeID"]}
unit = ReceptorControl(sock).submit_work(worktype="echo", payload=io.BytesIO(b"the payload\\n"))["unitid"]
out["unit"] = unit
out["results"] = ReceptorControl(sock).get_work_results(unit).read().decode()
out["status"] = ctl.simple_command(f"work status {unit}")
out["released"] = ctl.simple_command(f"work release {unit}")
try:
    ctl.simple_command(f"work status {unit}")
except RuntimeError as error:
    out["unknown"] = str(error)
slow = ReceptorControl(sock).submit_work(worktype="sleep", payload="", params={"params": "60"})["unitid"]
time.sleep(0.5)
out["running"] = ctl.simple_command(f"work status {slow}")["StateName"]
out["cancelled"] = ctl.simple_command(f"work cancel {slow}")
out["after_cancel"] = ctl.simple_command(f"work status {slow}")["StateName"]
out["list"] = sorted(ctl.simple_command("work list"))
try:
    ReceptorControl(sock).submit_work(worktype="echo", node="elsewhere", payload="")
except RuntimeError as error:
    out["remote"] = str(error)
print(json.dumps(out))
"""


def test_receptor_standin_speaks_receptorctl(awx: LocalAwx, tmp_path: Path) -> None:
    """The stand-in with receptorctl from AWX's venv (the version AWX pins): payload in, output back, status,
    release, cancel, receptor's error messages. It is not receptor: work for another node is refused."""
    conf = tmp_path / "receptor.conf"
    sock = tmp_path / "control.sock"
    conf.write_text(
        f"- node:\n    id: standin-test\n- control-service:\n    filename: {sock}\n"
        "- work-command:\n    worktype: echo\n    command: sh\n    params: -c 'cat; echo to-stderr >&2'\n"
        "- work-command:\n    worktype: sleep\n    command: sleep\n    allowruntimeparams: true\n"
    )
    server = subprocess.Popen(
        [sys.executable, "-m", "testbed.receptor_standin", "--config", str(conf), "--data-dir", str(tmp_path / "d")]
    )
    try:
        for _ in range(100):
            if sock.exists():
                break
            time.sleep(0.1)
        proc = subprocess.run(
            [str(awx.venv / "bin" / "python"), "-c", RECEPTORCTL_SESSION, str(sock)],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    finally:
        server.terminate()
        server.wait(30)
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout)
    assert seen["node"] == "standin-test"
    assert seen["results"] == "the payload\nto-stderr\n"
    assert seen["status"]["StateName"] == "Succeeded" and seen["status"]["Detail"] == "exit status 0", seen
    assert seen["status"]["StdoutSize"] == len(seen["results"])
    assert seen["released"] == {"released": seen["unit"]}
    assert seen["unknown"].startswith("unknown work unit "), seen  # what AWX's receptor error matching expects
    assert (seen["running"], seen["after_cancel"]) == ("Running", "Canceled"), seen
    assert list(seen["cancelled"]) == ["cancelled"] and len(seen["list"]) == 1, seen
    assert "not supported by this receptor stand-in" in seen["remote"], seen
