#!/usr/bin/python
# Copyright: godot-fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module: export a Godot 4 project as a dedicated-server release (the packaging path)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: godot_export
short_description: Export a Godot 4 project as a verified, reproducible dedicated-server release
description:
  - Exports a Godot 4 project folder with Godot's own command line (C(--export-pack), C(--export-release)) and
    packs the result into release artifacts with C(SHA256SUMS), C(SHA512SUMS), C(VERSION), C(RELEASE) and a
    C(release.json) manifest that names the godot_server role variables of each artifact.
  - The project is exported from a copy (its C(.godot/) import cache is never used or touched). Its export preset
    is the one named in O(preset), else its first Linux preset in "Export as dedicated server" mode, else one is
    added to the copy in that mode (the C(dedicated_server) feature tag; textures, meshes and sounds replaced by
    placeholders a server never draws).
  - Reproducible - the same project files, engine, template and options give the same bytes (archives with sorted
    members, root owner, one mtime, no gzip timestamp). Idempotent - when O(dest) already holds the build of the
    same inputs, intact, nothing is done.
  - The engine runs on the build host, or in a podman image (O(container_image)) when it needs another C library
    than the build host has (for example a Linux distribution's engine package).
notes:
  - Runs on the build host with Python 3.9 or newer; C(podman) there for O(container_image).
  - The artifacts are C(pack) (the C(.pck) alone, for an engine that is already there, e.g. a room image's
    runtime base), C(exported) (C(NAME.x86_64) + C(NAME.pck) from the release export template), C(runtime) (the
    engine as C(godot) + C(NAME.pck), started with C(--main-pack)) and C(portable) (as C(runtime), with the
    engine's own dynamic loader and libraries, for hosts older than the engine's C library).
  - Godot 4.4+ keeps a C(.uid) file beside each script. A project without them gets random UIDs on every
    import, and its builds differ; the module warns about it.
version_added: 0.1.0
author: godot-fleet contributors (@godot-fleet)
options:
  project:
    description: The Godot 4 project folder (the directory holding C(project.godot)) on the build host.
    type: path
    required: true
  dest:
    description:
      - Directory the release is written to. It holds one build of the game; the files of an earlier build
        that the new one does not replace are removed.
    type: path
    required: true
  engine:
    description:
      - The Godot 4 editor binary that exports (and that C(runtime)/C(portable) artifacts ship) - a path on the
        build host (a binary, or Godot's official editor C(.zip)), or a path inside O(container_image).
    type: str
    required: true
  export_template:
    description:
      - The Linux release export template, needed by the C(exported) artifact - a path on the build host (the
        template binary, or Godot's official export templates C(.tpz)), or a path inside O(container_image).
    type: str
    default: ""
  container_image:
    description: Run the engine in this podman image, with no network. Empty runs it on the build host.
    type: str
    default: ""
  artifacts:
    description: What to build.
    type: list
    elements: str
    choices: [pack, exported, runtime, portable]
    default: [exported]
  name:
    description: >-
      File name stem of the artifacts and of the exported executable. Empty uses the project's name, in
      lower case with dashes.
    type: str
    default: ""
  version:
    description: Version of the build. Empty uses the project's C(application/config/version).
    type: str
    default: ""
  preset:
    description: Name of the project's export preset to use. Empty uses its dedicated-server preset or adds one.
    type: str
    default: ""
  architecture:
    description: CPU architecture of the export.
    type: str
    choices: [x86_64, arm64]
    default: x86_64
  source_date_epoch:
    description: Modification time (seconds since 1970) of every archive member.
    type: int
    default: 0
  timeout:
    description: Seconds the engine may take for the whole export.
    type: int
    default: 900
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
"""

EXAMPLES = r"""
- name: Export with Godot's official editor and export templates (downloaded and verified beforehand)
  godot_fleet.fleet.godot_export:
    project: /src/mygame
    dest: /src/dist
    engine: /var/cache/godot/Godot_v4.6.3-stable_linux.x86_64.zip
    export_template: /var/cache/godot/Godot_v4.6.3-stable_export_templates.tpz
  register: release

- name: Export with a distribution's engine in a container image, with a portable runtime for older hosts
  godot_fleet.fleet.godot_export:
    project: /src/mygame
    dest: /src/dist
    container_image: localhost/godot-fleet/godot:forky
    engine: /usr/bin/godot
    export_template: /usr/bin/godot-template-release
    artifacts: [pack, exported, portable]
"""

RETURN = r"""
name:
  description: File name stem of the artifacts.
  type: str
  returned: always
version:
  description: Version of the build.
  type: str
  returned: always
release:
  description: The label to deploy (godot_server_version) - the version plus a build id from the inputs.
  type: str
  returned: always
  sample: 0.3.1+3f2a9c0d1e
release_dir:
  description: Directory of the release (O(dest)).
  type: str
  returned: always
files:
  description:
    - Per artifact, its file, checksums, size and the godot_server variables that run it. Empty in check mode
      when a build is due.
  type: dict
  returned: always
warnings_seen:
  description: What makes the build not reproducible (also given as warnings).
  type: list
  elements: str
  returned: always
"""

from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.godot_fleet.fleet.plugins.module_utils.godot_export import (
    ARTIFACTS,
    BuildError,
    Options,
    build,
    current,
    plan,
)


def argument_spec() -> dict[str, Any]:
    return {
        "project": {"type": "path", "required": True},
        "dest": {"type": "path", "required": True},
        "engine": {"type": "str", "required": True},
        "export_template": {"type": "str", "default": ""},
        "container_image": {"type": "str", "default": ""},
        "artifacts": {"type": "list", "elements": "str", "choices": list(ARTIFACTS), "default": ["exported"]},
        "name": {"type": "str", "default": ""},
        "version": {"type": "str", "default": ""},
        "preset": {"type": "str", "default": ""},
        "architecture": {"type": "str", "choices": ["x86_64", "arm64"], "default": "x86_64"},
        "source_date_epoch": {"type": "int", "default": 0},
        "timeout": {"type": "int", "default": 900},
    }


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    p = module.params
    opts = Options(
        project=p["project"],
        dest=p["dest"],
        engine=p["engine"],
        export_template=p["export_template"],
        container_image=p["container_image"],
        artifacts=p["artifacts"],
        name=p["name"],
        version=p["version"],
        preset=p["preset"],
        architecture=p["architecture"],
        source_date_epoch=p["source_date_epoch"],
    )
    if opts.container_image:
        opts.podman = module.get_bin_path("podman", required=True)
    try:
        wanted = plan(opts)
    except BuildError as exc:
        module.fail_json(msg=f"godot_export: {exc}")
    for warning in wanted.warnings:
        module.warn(warning)
    result: dict[str, Any] = {
        "name": wanted.name,
        "version": wanted.version,
        "release": wanted.release,
        "release_dir": opts.dest,
        "warnings_seen": wanted.warnings,
    }
    manifest = current(opts, wanted)
    if manifest is not None:
        module.exit_json(changed=False, files=manifest["files"], **result)
    if module.check_mode:
        module.exit_json(changed=True, files={}, **result)
    try:
        built = build(opts, wanted, timeout=p["timeout"])
    except BuildError as exc:
        module.fail_json(msg=f"godot_export: {exc}", **result)
    module.exit_json(changed=True, files=built["files"], engine=built["engine"], **result)


if __name__ == "__main__":
    main()
