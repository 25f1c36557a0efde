"""The packaging path's pure parts: Godot's ConfigFile text, export presets, the input stamp, the archives."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import os
import tarfile
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.godot_fleet.fleet.plugins.module_utils.godot_export import (
    BuildError,
    Options,
    _unzipped,
    deploy_variables,
    plan,
)
from ansible_collections.godot_fleet.fleet.plugins.module_utils.godot_project import (
    ConfigFile,
    ExportPresets,
    ProjectError,
    read_project,
    scenes_without_node_ids,
    scripts_without_uid,
    slug,
    tree_digest,
    write_tar_gz,
)

PRESETS = """[preset.0]

name="Windows Desktop"
platform="Windows Desktop"
customized_files={
"res://": "strip"
}

[preset.0.options]

custom_template/release=""

[preset.1]

name="Linux"
platform="Linux"
dedicated_server=false

[preset.1.options]

binary_format/embed_pck=true
"""

PROJECT = """; Engine configuration file.
config_version=5

[application]

config/name="My \\"Great\\" Game!"
config/version="0.3.1"
config/features=PackedStringArray("4.6", "GL Compatibility")
"""


def make_project(path: Path, project: str = PROJECT) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "project.godot").write_text(project)
    (path / "main.gd").write_text("extends Node\n")
    (path / "main.gd.uid").write_text("uid://b1\n")
    (path / "main.tscn").write_text('[gd_scene format=3]\n\n[node name="Main" type="Node" unique_id=1]\n')
    return path


def test_config_file_keeps_what_it_does_not_change() -> None:
    config = ConfigFile(PRESETS)
    assert config.render() == PRESETS
    assert config.section("preset.0").get("customized_files") == '{\n"res://": "strip"\n}'  # type: ignore[union-attr]


def test_presets_find_and_add_a_dedicated_server_preset() -> None:
    presets = ExportPresets(PRESETS)
    assert presets.names() == ["Windows Desktop", "Linux"]
    assert presets.find("Linux") == 1 and presets.find("linux") is None
    assert presets.find_dedicated_server() is None  # the Linux preset is not in dedicated-server mode
    index = presets.add_dedicated_server()
    presets.set_options(index, [("custom_template/release", '"/t"'), ("binary_format/embed_pck", "false")])
    again = ExportPresets(presets.render())
    assert again.count() == 3 and again.find_dedicated_server() == 2
    preset = again.preset(2)
    assert preset.get("dedicated_server") == "true" and preset.get("export_filter") == '"customized"'
    assert preset.get("customized_files") == '{\n"res://": "strip"\n}'
    options = again.config.section("preset.2.options")
    assert options is not None and options.get("custom_template/release") == '"/t"'
    assert again.config.section("preset.1.options").get("binary_format/embed_pck") == "true"  # type: ignore[union-attr]


def test_read_project(tmp_path: Path) -> None:
    info = read_project(str(make_project(tmp_path / "p")))
    assert (info.name, info.version) == ('My "Great" Game!', "0.3.1")
    assert info.engine_features == ["4.6", "GL Compatibility"]
    assert slug(info.name) == "my-great-game"
    (tmp_path / "p" / "project.godot").write_text(PROJECT.replace("config_version=5", "config_version=4"))
    with pytest.raises(ProjectError, match="not a Godot 4 project"):
        read_project(str(tmp_path / "p"))
    with pytest.raises(ProjectError, match=r"no project\.godot"):
        read_project(str(tmp_path))


def test_the_stamp_follows_content_not_the_import_cache(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    first = tree_digest(str(project))
    (project / ".godot").mkdir()
    (project / ".godot" / "uid_cache.bin").write_bytes(os.urandom(16))
    assert tree_digest(str(project)) == first
    (project / "main.gd").write_text("extends Node2D\n")
    assert tree_digest(str(project)) != first


def test_what_makes_a_build_differ_is_found(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    assert scripts_without_uid(str(project)) == [] and scenes_without_node_ids(str(project), ["4.6"]) == []
    (project / "other.gd").write_text("extends Node\n")
    (project / "level.tscn").write_text('[gd_scene format=3]\n\n[node name="Level" type="Node"]\n')
    assert scripts_without_uid(str(project)) == ["other.gd"]
    assert scenes_without_node_ids(str(project), ["4.6"]) == ["level.tscn"]
    assert scenes_without_node_ids(str(project), ["4.5"]) == []  # no node ids before Godot 4.6


def test_archives_are_reproducible(tmp_path: Path) -> None:
    (tmp_path / "game.x86_64").write_bytes(b"\x7fELF...")
    (tmp_path / "game.x86_64").chmod(0o700)
    (tmp_path / "game.pck").write_bytes(b"GDPC")
    members = [("game.x86_64", str(tmp_path / "game.x86_64")), ("lib/game.pck", str(tmp_path / "game.pck"))]
    write_tar_gz(str(tmp_path / "a.tar.gz"), members, 1700000000)
    os.utime(tmp_path / "game.pck", (1, 1))
    write_tar_gz(str(tmp_path / "b.tar.gz"), members, 1700000000)
    digests = {hashlib.sha256((tmp_path / n).read_bytes()).hexdigest() for n in ("a.tar.gz", "b.tar.gz")}
    assert len(digests) == 1
    with gzip.open(tmp_path / "a.tar.gz") as stream:
        assert stream.read(1)  # a valid gzip stream
    with tarfile.open(tmp_path / "a.tar.gz") as archive:
        infos = archive.getmembers()
    assert [(i.name, i.mode, i.uid, i.uname, i.mtime) for i in infos] == [
        ("game.x86_64", 0o755, 0, "root", 1700000000),
        ("lib", 0o755, 0, "root", 1700000000),
        ("lib/game.pck", 0o644, 0, "root", 1700000000),
    ]


def test_plan_refuses_bad_input_with_what_to_fix(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    engine = tmp_path / "godot"
    engine.write_bytes(b"engine")
    opts = Options(project=str(project), dest=str(tmp_path / "dist"), engine=str(engine), export_template=str(engine))
    good = plan(opts)
    assert good.name == "my-great-game" and good.version == "0.3.1" and good.warnings == []
    assert good.files == {"exported": "my-great-game-0.3.1-linux-x86_64.tar.gz"}
    assert good.release == f"0.3.1+{good.stamp[:10]}" and plan(opts).stamp == good.stamp
    engine.write_bytes(b"another engine")
    assert plan(opts).stamp != good.stamp  # the engine is an input
    cases: list[tuple[dict[str, Any], str]] = [
        ({"export_template": ""}, "needs a release export template"),
        ({"artifacts": ["zip"]}, "artifacts must be"),
        ({"preset": "Mac"}, "no export preset named 'Mac'"),
        ({"version": "1.0 beta"}, "not usable in file names"),
        ({"engine": str(tmp_path / "missing")}, "does not exist on the build host"),
        ({"project": str(tmp_path)}, "no project.godot"),
    ]
    for change, message in cases:
        with pytest.raises(BuildError, match=message):
            plan(dataclasses.replace(opts, **change))
    (project / "project.godot").write_text(PROJECT.replace('config/version="0.3.1"\n', ""))
    with pytest.raises(BuildError, match="Project Settings > Application > Config > Version"):
        plan(opts)


def test_official_zips_are_unpacked(tmp_path: Path) -> None:
    import zipfile

    with zipfile.ZipFile(tmp_path / "editor.zip", "w") as z:
        z.writestr("Godot_v4.6.3-stable_linux.x86_64", b"editor")
    with zipfile.ZipFile(tmp_path / "templates.tpz", "w") as z:
        z.writestr("templates/version.txt", "4.6.3.stable")
        z.writestr("templates/linux_release.x86_64", b"template")
        z.writestr("templates/linux_debug.x86_64", b"debug")
    editor = _unzipped(str(tmp_path / "editor.zip"), "", str(tmp_path / "w"))
    assert Path(editor).read_bytes() == b"editor" and os.access(editor, os.X_OK)
    template = _unzipped(str(tmp_path / "templates.tpz"), "templates/linux_release.x86_64", str(tmp_path / "w"))
    assert Path(template).read_bytes() == b"template"
    with pytest.raises(BuildError, match=r"0 candidates for templates/linux_release\.arm64"):
        _unzipped(str(tmp_path / "templates.tpz"), "templates/linux_release.arm64", str(tmp_path / "w"))
    plain = tmp_path / "godot"
    plain.write_bytes(b"binary")
    assert _unzipped(str(plain), "", str(tmp_path / "w")) == str(plain)


def test_deploy_variables() -> None:
    assert deploy_variables("exported", "beacon", "x86_64") == {
        "godot_server_style": "exported",
        "godot_server_executable": "beacon.x86_64",
    }
    assert deploy_variables("portable", "beacon", "x86_64")["godot_server_main_pack"] == "beacon.pck"
    assert deploy_variables("pack", "beacon", "x86_64") == {}
