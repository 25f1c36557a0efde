"""Running a module's main() in-process: module arguments in, its exit_json or fail_json result out.

The pattern of ansible's own module unit tests: AnsibleModule.exit_json and fail_json raise AnsibleExitJson and
AnsibleFailJson instead of printing and exiting; set_module_args hands the arguments to AnsibleModule.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Callable
from unittest import mock

from ansible.module_utils import basic
from ansible.module_utils.common.text.converters import to_bytes

if TYPE_CHECKING:
    from botocore.stub import Stubber


class AnsibleExitJson(Exception):
    """exit_json was called: result holds its arguments."""

    def __init__(self, result: dict[str, Any]) -> None:
        super().__init__(result)
        self.result = result


class AnsibleFailJson(Exception):
    """fail_json was called: result holds its arguments (msg among them)."""

    def __init__(self, result: dict[str, Any]) -> None:
        super().__init__(result.get("msg"))
        self.result = result


def exit_json(self: Any, **kwargs: Any) -> None:
    kwargs.setdefault("changed", False)
    raise AnsibleExitJson(kwargs)


def fail_json(self: Any, msg: str, **kwargs: Any) -> None:
    kwargs["failed"] = True
    kwargs["msg"] = msg
    raise AnsibleFailJson(kwargs)


@contextlib.contextmanager
def set_module_args(args: dict[str, Any]) -> Iterator[None]:
    """The arguments the next AnsibleModule reads (ansible-core 2.19 has patch_module_args for this)."""
    try:
        from ansible.module_utils.testing import patch_module_args
    except ImportError:  # ansible-core < 2.19
        serialized = to_bytes(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
        with mock.patch.object(basic, "_ANSIBLE_ARGS", serialized):
            yield
    else:
        with patch_module_args(args):
            yield


def run_module(main: Callable[[], None], args: dict[str, Any], check_mode: bool = False) -> dict[str, Any]:
    """Runs main() with args; returns what it passed to exit_json. fail_json raises AnsibleFailJson."""
    if check_mode:
        args = {**args, "_ansible_check_mode": True}
    with set_module_args(args), mock.patch.multiple(basic.AnsibleModule, exit_json=exit_json, fail_json=fail_json):
        try:
            main()
        except AnsibleExitJson as exited:
            return exited.result
    raise AssertionError("the module returned without calling exit_json or fail_json")


def fail_module(main: Callable[[], None], args: dict[str, Any], check_mode: bool = False) -> dict[str, Any]:
    """Runs main() with args, which must fail; returns what it passed to fail_json."""
    try:
        result = run_module(main, args, check_mode)
    except AnsibleFailJson as failed:
        return failed.result
    raise AssertionError(f"the module did not fail: {result}")


@contextlib.contextmanager
def stubbed_aws(service: str) -> Iterator[Stubber]:
    """AnsibleAWSModule.client(service) returns a botocore client whose answers the yielded Stubber gives.

    The Stubber checks every request against the service model and the expected parameters; nothing reaches AWS,
    and no region or credentials are needed. Every stubbed answer must have been asked for.
    """
    import botocore.session
    from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
    from ansible_collections.amazon.aws.plugins.module_utils.retries import RetryingBotoClientWrapper
    from botocore.stub import Stubber

    client = botocore.session.get_session().create_client(
        service, region_name="eu-west-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )

    def fake(self: Any, name: str, retry_decorator: Any = None, **extra: Any) -> Any:
        assert name == service, name
        return client if retry_decorator is None else RetryingBotoClientWrapper(client, retry_decorator)

    with Stubber(client) as stubber, mock.patch.object(AnsibleAWSModule, "client", fake):
        yield stubber
        stubber.assert_no_pending_responses()
