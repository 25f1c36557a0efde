"""Builds the room API's AWS Lambda artifact: a reproducible zip of the modules the functions run.

    python room_api/build_lambda.py DEST.zip

The zip holds `room_api/` with the handlers, the model, the key check and the AWS backend; not the local backend
(podman + SQLite), the local HTTP server or the command line, which a function never runs. The same sources always
give the same bytes (sorted entries, every timestamp 1980-01-01 00:00:00, every mode 0644), hence the same
CodeSha256 on Lambda: amazon.aws.lambda reports no change for unchanged code. The file is replaced atomically and
only when its bytes change. `make room-api` builds it where the aws_rooms_api role finds it by default
(roles/aws_rooms_api/files/), and scripts/collection.sh builds it into the collection.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import os
import sys
import tempfile
import zipfile
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent / "src" / "room_api"
#: what the functions run (room_api.aws_lambda and what it imports)
MODULES = ("__init__.py", "auth.py", "aws.py", "aws_lambda.py", "backend.py", "handlers.py", "model.py")
EPOCH = (1980, 1, 1, 0, 0, 0)


def build(package: Path = PACKAGE) -> bytes:
    """The archive: a pure function of the modules' contents."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for module in sorted(MODULES):
            info = zipfile.ZipInfo(f"room_api/{module}", date_time=EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix, so external_attr holds the mode
            info.external_attr = 0o100644 << 16
            archive.writestr(info, (package / module).read_bytes(), compresslevel=9)
    return buffer.getvalue()


def write(data: bytes, dest: Path) -> bool:
    """Writes the archive to dest atomically; False when dest already holds these bytes."""
    if dest.is_file() and dest.read_bytes() == data:
        return False
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=dest.parent, prefix=f".{dest.name}-", delete=False) as tmp:
        tmp.write(data)
    os.chmod(tmp.name, 0o644)
    os.replace(tmp.name, dest)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dest", type=Path, help="the zip to write, e.g. roles/aws_rooms_api/files/room-api-lambda.zip")
    args = parser.parse_args(argv)
    data = build()
    written = write(data, args.dest)
    sha = base64.b64encode(hashlib.sha256(data).digest()).decode()
    print(f"{args.dest}: {'written' if written else 'unchanged'}, CodeSha256 {sha}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
