"""`python -m testbed.arm_double --port P --ca-dir DIR [--state-file F] [--blob-endpoint URL] [--storage-key KEY]`."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from pathlib import Path

from .arm import DEFAULT_STORAGE_KEY, Config
from .server import ArmDouble


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m testbed.arm_double", description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free port)")
    parser.add_argument("--ca-dir", type=Path, required=True, help="where the test CA and ca-bundle.pem are written")
    parser.add_argument("--state-file", type=Path, help="keep the state in this JSON file across restarts")
    parser.add_argument("--blob-endpoint", default="http://127.0.0.1:10000", help="blob service (Azurite) base URL")
    parser.add_argument("--storage-key", default=DEFAULT_STORAGE_KEY, help="base64 key that listKeys returns")
    parser.add_argument("--lro-seconds", type=float, default=0.0, help="how long long-running operations run")
    parser.add_argument("--verbose", action="store_true", help="log every HTTP request to stderr")
    args = parser.parse_args(argv)

    started = time.monotonic()
    config = Config(blob_endpoint=args.blob_endpoint, storage_key=args.storage_key, lro_seconds=args.lro_seconds)
    double = ArmDouble(args.ca_dir, port=args.port, state_file=args.state_file, config=config, verbose=args.verbose)
    double.start()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    for name, value in double.env().items():
        if name.isupper():
            print(f"{name}={value}")
    print(f"READY port={double.port} seconds={time.monotonic() - started:.2f}", flush=True)
    stop.wait()
    double.stop()
    double.state.save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
