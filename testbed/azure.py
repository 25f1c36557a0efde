"""The local Azure of godot-fleet: the ARM test double, Azurite and a managed-identity stand-in, all on loopback.

Used by `make demo-azure` and tests/integration/test_azure.py, so both run deploy-azure.yml as on Azure; only
variables and the environment differ.

    python -m testbed.azure serve --dir DIR --port P --account NAME [--account NAME ...]
        starts everything until SIGTERM; writes DIR/env (the variables a client needs) and prints READY
    python -m testbed.azure host-up NAME --dir DIR     a systemd container standing in for a VM
    python -m testbed.azure host-down NAME

From Python: `with local_azure(directory, accounts) as env:` (a child process, stopped afterwards).

What stands in for what:
- ARM (management.azure.com) and Entra ID (login.microsoftonline.com): the ARM test double (testbed/arm_double),
  reached by the unmodified azure.azcollection modules through HTTPS_PROXY with a test CA.
- The Blob service: Azurite over HTTPS (a certificate for 127.0.0.1 from a harness CA), with its basic OAuth
  check on, so bearer tokens are required and checked for issuer, audience and lifetime (not for signature or
  role assignments: Azurite does not evaluate RBAC; the tests check the role assignment in the ARM state).
  The double returns https://127.0.0.1:<port>/<account>/ as the account's blob endpoint.
- The VM's instance metadata service (169.254.169.254, which nothing here may reach): GET
  /instance/<vm>/metadata/identity/oauth2/token on the `--port + 1` port answers like IMDS for the VM <vm> of the
  double: a token for its system-assigned identity (oid = the principalId ARM gave it), 400 if it has none.
  The host role is pointed at it with godot_server_azure_identity_endpoint.
- A VM: a container with the host's network namespace (moto-style loopback reachability), its own systemd, and
  the harness CA in its trust store (as an image with the right CA bundle would have).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from testbed import ROOT, free_port_block, hosts

AZURITE = ROOT / ".cache" / "node" / "node_modules" / ".bin" / "azurite-blob"
TENANT = "22222222-2222-2222-2222-222222222222"
# A fake service principal: the double accepts any; never real credentials here
CREDENTIALS = {
    "AZURE_SUBSCRIPTION_ID": "00000000-0000-0000-0000-000000000000",
    "AZURE_CLIENT_ID": "11111111-1111-1111-1111-111111111111",
    "AZURE_SECRET": "local-azure-fake-secret",
    "AZURE_TENANT": TENANT,
}


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def identity_token(principal_id: str, resource: str, lifetime: int = 3600) -> dict[str, Any]:
    """An IMDS-shaped answer with a JWT for the identity (unsigned: Azurite's basic check reads, not verifies)."""
    now = int(time.time())
    claims = {
        "aud": resource.rstrip("/"),
        "iss": f"https://sts.windows.net/{TENANT}/",
        "iat": now,
        "nbf": now - 60,
        "exp": now + lifetime,
        "oid": principal_id,
        "sub": principal_id,
        "tid": TENANT,
        "idtyp": "app",
    }
    header = {"typ": "JWT", "alg": "RS256", "kid": "local-azure"}
    token = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}.{_b64url(b'unsigned')}"
    return {
        "access_token": token,
        "client_id": principal_id,
        "expires_in": str(lifetime),
        "expires_on": str(now + lifetime),
        "ext_expires_in": str(lifetime),
        "not_before": str(now - 60),
        "resource": resource,
        "token_type": "Bearer",
    }


def harness_tls(directory: Path) -> tuple[Path, Path, Path]:
    """A harness CA and a certificate for 127.0.0.1 (Azurite's HTTPS): (ca.pem, cert.pem, key.pem)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "godot-fleet local Azure CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    import ipaddress

    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = (directory / "ca.pem", directory / "azurite-cert.pem", directory / "azurite-key.pem")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    paths[2].chmod(0o600)
    return paths


def serve(directory: Path, port: int, accounts: list[str]) -> None:
    from testbed.arm_double.arm import DEFAULT_STORAGE_KEY, Config
    from testbed.arm_double.server import ArmDouble

    directory.mkdir(parents=True, exist_ok=True)
    if not AZURITE.exists():
        raise SystemExit(f"Azurite is not installed ({AZURITE}): run scripts/node.sh (make test / make demo-azure do)")
    ca, cert, key = harness_tls(directory / "tls")
    blob_port, imds_port = port + 2, port + 1
    data = directory / "azurite"
    shutil.rmtree(data, ignore_errors=True)
    azurite = subprocess.Popen(
        [str(AZURITE), "--blobHost", "127.0.0.1", "--blobPort", str(blob_port), "--cert", str(cert), "--key", str(key),
         "--oauth", "basic", "--disableTelemetry", "--skipApiVersionCheck", "--location", str(data)],
        env=dict(os.environ, AZURITE_ACCOUNTS=";".join(f"{a}:{DEFAULT_STORAGE_KEY}" for a in accounts)),
        stdout=(directory / "azurite.log").open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    config = Config(blob_endpoint=f"https://127.0.0.1:{blob_port}")
    double = ArmDouble(directory / "arm-ca", port=port, config=config).start()

    def principal_of(vm: str) -> str | None:
        for doc in double.state.of_type("Microsoft.Compute/virtualMachines"):
            if str(doc.get("name", "")).lower() == vm.lower():
                principal: str | None = (doc.get("identity") or {}).get("principalId")
                return principal
        return None

    class Imds(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path, _, query = self.path.partition("?")
            parts = path.strip("/").split("/")
            params = dict(p.partition("=")[::2] for p in query.split("&") if p)
            if (
                len(parts) != 6
                or parts[0] != "instance"
                or parts[2:] != ["metadata", "identity", "oauth2", "token"]
                or self.headers.get("Metadata") != "true"
            ):
                self._answer(400, {"error": "invalid_request", "error_description": "not an identity token request"})
                return
            principal = principal_of(parts[1])
            if principal is None:
                self._answer(400, {"error": "invalid_request", "error_description": "Identity not found"})
                return
            from urllib.parse import unquote

            self._answer(200, identity_token(principal, unquote(params.get("resource", "https://storage.azure.com/"))))

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, format: str, *args: Any) -> None:
            return

    imds = ThreadingHTTPServer(("127.0.0.1", imds_port), Imds)
    threading.Thread(target=imds.serve_forever, daemon=True).start()

    bundle = directory / "ca-bundle.pem"
    bundle.write_text(Path(double.env()["REQUESTS_CA_BUNDLE"]).read_text() + ca.read_text())
    env = dict(double.env(), REQUESTS_CA_BUNDLE=str(bundle), **CREDENTIALS)
    env["GF_AZURE_IMDS"] = f"http://127.0.0.1:{imds_port}"
    env["GF_AZURE_DOUBLE"] = f"http://127.0.0.1:{port}"
    env["GF_AZURE_BLOB"] = f"https://127.0.0.1:{blob_port}"
    (directory / "env").write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    for _ in range(100):
        if "successfully listens" in (directory / "azurite.log").read_text():
            break
        if azurite.poll() is not None:
            raise SystemExit(f"Azurite exited: {(directory / 'azurite.log').read_text()[-2000:]}")
        time.sleep(0.1)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print("READY", flush=True)
    try:
        stop.wait()
    finally:
        imds.shutdown()
        double.stop()
        azurite.terminate()
        azurite.wait(timeout=10)


@contextlib.contextmanager
def local_azure(directory: Path, accounts: Sequence[str], port: int | None = None) -> Iterator[dict[str, str]]:
    """The local Azure (serve()) as a child process while the block runs, on `port`..`port`+2 (default: a free
    block); yields the environment its clients need (the env file), plus GF_AZURE_DIR."""
    port = port or free_port_block(3)
    command = [sys.executable, "-m", "testbed.azure", "serve", "--dir", str(directory), "--port", str(port)]
    process = subprocess.Popen(
        [*command, *(f"--account={a}" for a in accounts)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if line.strip() != "READY":
            raise RuntimeError(f"the local Azure did not start: {line}{process.stdout.read()[-3000:]}")
        env = dict(entry.split("=", 1) for entry in (directory / "env").read_text().splitlines() if "=" in entry)
        env["GF_AZURE_DIR"] = str(directory)
        yield env
    finally:
        process.terminate()
        process.wait(timeout=20)


def host_up(name: str, directory: Path) -> None:
    """Starts (or reuses, if it answers) a systemd container standing in for a VM, trusting the harness CA."""
    hosts.start(name)
    hosts.run_in(
        name,
        "cat > /usr/local/share/ca-certificates/godot-fleet-local-azure.crt && update-ca-certificates >/dev/null",
        (directory / "tls" / "ca.pem").read_text(),
    )


def host_down(name: str) -> None:
    hosts.remove(name)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p_serve = sub.add_parser("serve", help="ARM double + Azurite + identity stand-in on loopback, until SIGTERM")
    p_serve.add_argument("--dir", type=Path, required=True, help="state directory (env file, TLS files, logs)")
    p_serve.add_argument("--port", type=int, required=True, help="ARM proxy port; +1 identity, +2 blob (Azurite)")
    p_serve.add_argument("--account", action="append", default=[], help="storage account name Azurite serves")
    p_up = sub.add_parser("host-up", help="start a container standing in for a VM")
    p_up.add_argument("name")
    p_up.add_argument("--dir", type=Path, required=True)
    p_down = sub.add_parser("host-down", help="remove such a container")
    p_down.add_argument("name")
    args = parser.parse_args(argv)
    if args.command == "serve":
        if not args.account:
            parser.error("at least one --account (the storage account deploy-azure.yml creates)")
        serve(args.dir, args.port, args.account)
    elif args.command == "host-up":
        host_up(args.name, args.dir)
    else:
        host_down(args.name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
