# Copyright: godot-fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation the AWS modules of the collection share: their action group (meta/runtime.yml)."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options: {}
attributes:
  action_group:
    description:
      - Use C(group/godot_fleet.fleet.aws) in C(module_defaults) to set defaults for this module (the group also
        holds the amazon.aws and community.aws modules).
    support: full
    membership:
      - godot_fleet.fleet.aws
"""
