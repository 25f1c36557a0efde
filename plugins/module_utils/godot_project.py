# Copyright: godot-fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A Godot 4 project folder as the packaging path sees it: its settings, its export presets, its content hash,
and reproducible release archives. Standard library only (runs on the build host with Python 3.9+)."""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass, field

# Godot's import cache: rebuilt by every export, never part of a build's input.
IMPORT_CACHE = ".godot"
SERVER_PRESET_NAME = "Linux dedicated server (godot-fleet)"


class ProjectError(Exception):
    """The project folder cannot be packaged as it is; the message says what to fix."""


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return value


def quote(value: str) -> str:
    """A string in Godot's ConfigFile syntax."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass
class Entry:
    key: str
    value: str  # raw text after '=', possibly several lines


@dataclass
class Section:
    name: str
    entries: list[Entry] = field(default_factory=list)

    def get(self, key: str) -> str | None:
        for entry in self.entries:
            if entry.key == key:
                return entry.value
        return None

    def set(self, key: str, value: str) -> None:
        for entry in self.entries:
            if entry.key == key:
                entry.value = value
                return
        self.entries.append(Entry(key, value))


def _balanced(text: str) -> bool:
    """True when brackets, braces and parentheses outside strings are closed (a value may span lines)."""
    depth = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{(":
            depth += 1
        elif char in "]})":
            depth -= 1
    return depth <= 0 and not in_string


class ConfigFile:
    """Godot's ConfigFile text format (project.godot, export_presets.cfg): sections of key=value lines whose
    values are kept as raw text, so that a file is rewritten without touching what is not changed."""

    def __init__(self, text: str = "") -> None:
        self.header: list[str] = []
        self.sections: list[Section] = []
        lines = text.splitlines()
        index = 0
        while index < len(lines):
            line = lines[index]
            index += 1
            stripped = line.strip()
            if stripped.startswith("[") and stripped.endswith("]") and "=" not in stripped:
                self.sections.append(Section(stripped[1:-1]))
            elif not stripped or stripped.startswith(";"):
                if not self.sections:
                    self.header.append(line)
            elif "=" in line:
                key, value = line.split("=", 1)
                while not _balanced(value) and index < len(lines):
                    value += "\n" + lines[index]
                    index += 1
                if not self.sections:
                    self.sections.append(Section(""))
                self.sections[-1].entries.append(Entry(key.strip(), value))

    def section(self, name: str) -> Section | None:
        for section in self.sections:
            if section.name == name:
                return section
        return None

    def ensure_section(self, name: str) -> Section:
        found = self.section(name)
        if found is None:
            found = Section(name)
            self.sections.append(found)
        return found

    def render(self) -> str:
        parts = ["\n".join(self.header).rstrip("\n")] if any(line.strip() for line in self.header) else []
        for section in self.sections:
            body = "\n".join(f"{entry.key}={entry.value}" for entry in section.entries)
            parts.append(f"[{section.name}]\n\n{body}" if section.name else body)
        return "\n\n".join(parts) + "\n"


@dataclass
class ProjectInfo:
    name: str
    version: str
    engine_features: list[str]


def read_project(project_dir: str) -> ProjectInfo:
    path = os.path.join(project_dir, "project.godot")
    if not os.path.isfile(path):
        raise ProjectError(f"{project_dir} is not a Godot project folder: it has no project.godot")
    with open(path, encoding="utf-8") as handle:
        config = ConfigFile(handle.read())
    application = config.section("application") or Section("application")
    name = _unquote(application.get("config/name") or "")
    version = _unquote(application.get("config/version") or "")
    features = re.findall(r'"([^"]*)"', application.get("config/features") or "")
    top = config.section("") or Section("")
    if (top.get("config_version") or "").strip() != "5":
        raise ProjectError(f"{path} is not a Godot 4 project (config_version=5): open and save it once in Godot 4")
    return ProjectInfo(name=name, version=version, engine_features=features)


def slug(text: str) -> str:
    """A file-name-safe, lower-case form of a game's name ("My Game!" -> "my-game")."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


class ExportPresets:
    """export_presets.cfg: presets [preset.N] with their options in [preset.N.options], N counting from 0."""

    def __init__(self, text: str = "") -> None:
        self.config = ConfigFile(text)

    def count(self) -> int:
        count = 0
        while self.config.section(f"preset.{count}") is not None:
            count += 1
        return count

    def names(self) -> list[str]:
        return [_unquote(self.preset(i).get("name") or "") for i in range(self.count())]

    def preset(self, index: int) -> Section:
        found = self.config.section(f"preset.{index}")
        if found is None:
            raise IndexError(index)
        return found

    def find(self, name: str) -> int | None:
        for index, preset_name in enumerate(self.names()):
            if preset_name == name:
                return index
        return None

    def find_dedicated_server(self, platform: str = "Linux") -> int | None:
        for index in range(self.count()):
            preset = self.preset(index)
            if (
                _unquote(preset.get("platform") or "") == platform
                and (preset.get("dedicated_server") or "").strip() == "true"
            ):
                return index
        return None

    def add_dedicated_server(self, name: str = SERVER_PRESET_NAME) -> int:
        """Adds a Linux preset in Godot's "Export as dedicated server" mode: the dedicated_server feature tag,
        visual resources stripped (textures, meshes and sounds replaced by placeholders the server never draws)."""
        index = self.count()
        preset = self.config.ensure_section(f"preset.{index}")
        for key, value in (
            ("name", quote(name)),
            ("platform", '"Linux"'),
            ("runnable", "false"),
            ("advanced_options", "false"),
            ("dedicated_server", "true"),
            ("custom_features", '""'),
            ("export_filter", '"customized"'),
            ("customized_files", '{\n"res://": "strip"\n}'),
            ("include_filter", '""'),
            ("exclude_filter", '""'),
            ("export_path", '""'),
            ("encryption_include_filters", '""'),
            ("encryption_exclude_filters", '""'),
            ("encrypt_pck", "false"),
            ("encrypt_directory", "false"),
            ("script_export_mode", "2"),
        ):
            preset.set(key, value)
        self.config.ensure_section(f"preset.{index}.options")
        return index

    def set_options(self, index: int, options: Iterable[tuple[str, str]]) -> None:
        section = self.config.ensure_section(f"preset.{index}.options")
        for key, value in options:
            section.set(key, value)

    def render(self) -> str:
        return self.config.render()


def project_files(project_dir: str) -> list[str]:
    """Relative paths of the project's files (not Godot's import cache), sorted."""
    found: list[str] = []
    for root, dirs, files in os.walk(project_dir):
        rel_root = os.path.relpath(root, project_dir)
        if rel_root == ".":
            dirs[:] = [d for d in dirs if d != IMPORT_CACHE]
        dirs.sort()
        for name in files:
            found.append(os.path.normpath(os.path.join(rel_root, name)))
    return sorted(found)


def file_digest(path: str, algorithm: str = "sha256") -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def tree_digest(project_dir: str) -> str:
    """One hash of every project file's path, mode and content: the build's input."""
    digest = hashlib.sha256()
    for rel in project_files(project_dir):
        full = os.path.join(project_dir, rel)
        digest.update(f"{rel}\0{os.access(full, os.X_OK)}\0{file_digest(full)}\n".encode())
    return digest.hexdigest()


def scripts_without_uid(project_dir: str) -> list[str]:
    """Scripts and shaders without the .uid file Godot 4.4+ keeps beside them: Godot invents a random UID for
    each on import, so a build of a project without them is not reproducible."""
    files = set(project_files(project_dir))
    return [f for f in sorted(files) if f.endswith((".gd", ".gdshader")) and f + ".uid" not in files]


def scenes_without_node_ids(project_dir: str, features: list[str]) -> list[str]:
    """Scenes with nodes that have no unique_id, in a Godot 4.6+ project: Godot gives such nodes random ids on
    import (the editor stores them when it saves a scene), so a build of them is not reproducible."""
    versions = [tuple(int(n) for n in f.split(".")) for f in features if re.match(r"^\d+\.\d+$", f)]
    if not versions or max(versions) < (4, 6):
        return []
    found = []
    for rel in project_files(project_dir):
        if rel.endswith(".tscn"):
            with open(os.path.join(project_dir, rel), encoding="utf-8") as handle:
                if any(line.startswith("[node ") and "unique_id=" not in line for line in handle):
                    found.append(rel)
    return found


def write_tar_gz(out_path: str, members: Iterable[tuple[str, str]], mtime: int) -> None:
    """A reproducible .tar.gz: the members (archive name, file) in the given order, owned by root, with the same
    mtime, modes 0755 (executable) or 0644, and no timestamp or file name in the gzip header."""
    with open(out_path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as zipped:
        _write_tar(zipped, members, mtime)


def _write_tar(stream: gzip.GzipFile, members: Iterable[tuple[str, str]], mtime: int) -> None:
    with tarfile.open(fileobj=stream, mode="w", format=tarfile.GNU_FORMAT) as archive:
        directories: set[str] = set()
        for arcname, path in members:
            parts = arcname.split("/")[:-1]
            for depth in range(1, len(parts) + 1):
                directory = "/".join(parts[:depth])
                if directory not in directories:
                    directories.add(directory)
                    info = tarfile.TarInfo(directory)
                    info.type = tarfile.DIRTYPE
                    _normalise(info, 0o755, mtime)
                    archive.addfile(info)
            info = tarfile.TarInfo(arcname)
            info.size = os.path.getsize(path)
            _normalise(info, 0o755 if os.access(path, os.X_OK) else 0o644, mtime)
            with open(path, "rb") as handle:
                archive.addfile(info, handle)


def _normalise(info: tarfile.TarInfo, mode: int, mtime: int) -> None:
    info.mode = mode
    info.mtime = mtime
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
