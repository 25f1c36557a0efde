"""Fixtures of the room API tests: the room image and one contract target per backend kind (helpers live in
tests/room_api/roomtest.py, importable as tests.room_api.roomtest)."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Any

import pytest

from tests.room_api.roomtest import LocalTarget, ensure_room_image


@pytest.fixture(scope="session")
def room_image() -> str:
    """The room image of the real-podman tests (built once by build-room-image.yml if missing)."""
    return ensure_room_image()


@pytest.fixture(scope="session")
def local_contract_target(room_image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTarget]:
    target = LocalTarget(room_image, tmp_path_factory.mktemp("local-contract"))
    try:
        yield target
    finally:
        target.close()


#: Backends the contract tests run against. Kind K provides a session fixture `K_contract_target` yielding an
#: object shaped like LocalTarget (roomtest.ContractTarget). "local" is defined above; any other kind
#: lives in tests/room_api/K_fixture.py. Adding a backend = adding its kind to this list.
BACKEND_KINDS = ["local", "aws"]

for _kind in BACKEND_KINDS:
    if _kind != "local":
        _module = importlib.import_module(f"tests.room_api.{_kind}_fixture")
        globals()[f"{_kind}_contract_target"] = getattr(_module, f"{_kind}_contract_target")


@pytest.fixture(params=BACKEND_KINDS)
def backend_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def contract_target(backend_kind: str, request: pytest.FixtureRequest) -> Iterator[Any]:
    """The target of `backend_kind`, emptied after each test (also when the test failed)."""
    target = request.getfixturevalue(f"{backend_kind}_contract_target")
    try:
        yield target
    finally:
        target.reset()
