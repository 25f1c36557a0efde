# Copyright: godot-fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The packaging path: a Godot 4 project folder -> a verified server release (the godot_export module).

The engine runs on the build host or in a container image (podman) through one POSIX shell script; everything
around it (presets, archives, checksums, the manifest) is done here, reproducibly: the same project, engine,
templates and options give the same bytes."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import zipfile
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.godot_fleet.fleet.plugins.module_utils.godot_project import (
    SERVER_PRESET_NAME,
    ExportPresets,
    ProjectError,
    file_digest,
    project_files,
    quote,
    read_project,
    scenes_without_node_ids,
    scripts_without_uid,
    slug,
    tree_digest,
    write_tar_gz,
)

# Bump when the layout of the outputs changes: every earlier build is then rebuilt.
FORMAT = 1
ARTIFACTS = ("pack", "exported", "runtime", "portable")
MANIFEST = "release.json"
VERSION_PATTERN = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+_-]*$")
CONTAINER_WORK = "/build"
# Libraries Debian's engine build loads with dlopen when it runs headless (SDL3 -> libudev, TBB -> libtbbmalloc):
# ldd does not list them, so the portable runtime takes them when the build environment has them.
DLOPEN_LIBRARIES = ("libudev.so.1", "libtbbmalloc.so.2")

# Runs in the build environment (the host, or the container with the work directory at /build).
# Inputs: WORK ENGINE TEMPLATE PRESET NAME ARCH WANT_* DLOPEN. Exit 3: an export failed (its log is on stderr).
BUILD_SCRIPT = r"""
set -eu
export HOME="$WORK/home" XDG_DATA_HOME="$WORK/home/.local/share" XDG_CONFIG_HOME="$WORK/home/.config" \
    XDG_CACHE_HOME="$WORK/home/.cache"
mkdir -p "$HOME" "$WORK/out"
cd "$WORK/project"
if ! "$ENGINE" --headless --version >"$WORK/out/engine-version" 2>"$WORK/engine.log"; then
    cat "$WORK/engine.log" >&2
    echo "the engine $ENGINE does not run here" >&2
    exit 4
fi
run_export() {  # $1 --export-pack|--export-release, $2 output file
    if ! "$ENGINE" --headless --path . "$1" "$PRESET" "$2" >"$WORK/export.log" 2>&1 || [ ! -s "$2" ]; then
        grep -v '^\s*$' "$WORK/export.log" | tail -n 40 >&2
        echo "godot $1 \"$PRESET\" failed" >&2
        exit 3
    fi
}
if [ -n "$WANT_PACK$WANT_RUNTIME$WANT_PORTABLE" ]; then
    run_export --export-pack "$WORK/out/game.pck"
fi
if [ -n "$WANT_EXPORTED" ]; then
    mkdir -p "$WORK/out/exported"
    run_export --export-release "$WORK/out/exported/$NAME.$ARCH"
    if [ ! -s "$WORK/out/exported/$NAME.pck" ]; then
        echo "--export-release wrote no $NAME.pck beside the executable" >&2
        exit 3
    fi
fi
if [ -n "$WANT_RUNTIME" ]; then
    mkdir -p "$WORK/out/runtime"
    cp "$ENGINE" "$WORK/out/runtime/godot"
fi
if [ -n "$WANT_PORTABLE" ]; then
    p="$WORK/out/portable"
    mkdir -p "$p/engine/lib"
    cp "$ENGINE" "$p/engine/godot"
    extra=""
    for soname in $DLOPEN; do
        path=$(ldconfig -p 2>/dev/null | awk -v n="$soname" '$1 == n { print $NF; exit }')
        [ -n "$path" ] && extra="$extra $path"
    done
    { ldd "$ENGINE"; for lib in $extra; do echo "$(basename "$lib") => $lib (0)"; ldd "$lib"; done; } >"$WORK/ldd.txt"
    awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 }' "$WORK/ldd.txt" | sort -u | while read -r soname path; do
        cp -L "$path" "$p/engine/lib/$soname"
    done
    loader=$(awk '$1 ~ /^\/.*ld-linux/ { print $1; exit }' "$WORK/ldd.txt")
    if [ -z "$loader" ]; then
        echo "ldd names no dynamic loader for $ENGINE: is it a dynamically linked Linux executable?" >&2
        exit 4
    fi
    cp -L "$loader" "$p/engine/lib/$(basename "$loader")"
    cat >"$p/godot" <<LAUNCHER
#!/bin/sh
# Portable Godot runtime (godot-fleet): the bundled engine runs through its bundled dynamic loader and libraries,
# so it needs nothing from the host but a Linux kernel. Works through symlinks and from any directory.
here=\$(dirname -- "\$(readlink -f -- "\$0")")
exec "\$here/engine/lib/$(basename "$loader")" --library-path "\$here/engine/lib" "\$here/engine/godot" "\$@"
LAUNCHER
    chmod 0755 "$p/godot"
    "$p/godot" --headless --version >/dev/null
    # what the bundle is (the room image's runtime base is named after the engine line)
    {
        echo "engine: godot $(tail -n 1 "$WORK/out/engine-version"), $(find "$p/engine/lib" -type f | wc -l) libraries"
        echo "run: ./godot --headless --main-pack $NAME.pck -- --server --port=12077"
    } >"$p/engine/BUNDLE.txt"
fi
"""


class BuildError(Exception):
    """The build failed; the message says why and what to fix."""


@dataclass
class Options:
    project: str
    dest: str
    engine: str
    export_template: str = ""
    container_image: str = ""
    artifacts: list[str] = field(default_factory=lambda: ["exported"])
    name: str = ""
    version: str = ""
    preset: str = ""
    architecture: str = "x86_64"
    source_date_epoch: int = 0
    podman: str = "podman"


@dataclass
class Plan:
    """What a build of these options makes, and the stamp of its inputs."""

    name: str
    version: str
    stamp: str
    files: dict[str, str]  # artifact -> file name
    warnings: list[str]

    @property
    def release(self) -> str:
        return f"{self.version}+{self.stamp[:10]}"


def _engine_identity(opts: Options) -> str:
    """What identifies the engine and template: their bytes on the host, or the image they are in."""
    if opts.container_image:
        result = subprocess.run(
            [opts.podman, "image", "inspect", "--format", "{{.Id}}", opts.container_image],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise BuildError(
                f"the build image {opts.container_image} is not there ({result.stderr.strip() or 'podman failed'}):"
                " build or pull it first, or leave container_image empty to run the engine on the build host"
            )
        return f"image {result.stdout.strip()} engine {opts.engine} template {opts.export_template}"
    parts = []
    for label, path in (("engine", opts.engine), ("template", opts.export_template)):
        if path:
            if not os.path.isfile(path):
                raise BuildError(f"the {label} {path} does not exist on the build host")
            parts.append(f"{label} {file_digest(path)}")
    return " ".join(parts)


def plan(opts: Options) -> Plan:
    """Checks the inputs and works out names and the input stamp; changes nothing."""
    try:
        info = read_project(opts.project)
    except ProjectError as exc:
        raise BuildError(str(exc)) from exc
    unknown = sorted(set(opts.artifacts) - set(ARTIFACTS))
    if unknown or not opts.artifacts:
        raise BuildError(f"artifacts must be a non-empty list of {', '.join(ARTIFACTS)}; got {opts.artifacts}")
    if "exported" in opts.artifacts and not opts.export_template:
        raise BuildError(
            "the exported artifact needs a release export template (export_template): the official"
            " linux_release.x86_64 of Godot's export templates (.tpz), or a distribution's template binary"
        )
    name = opts.name or slug(info.name)
    if not name or not VERSION_PATTERN.match(name):
        raise BuildError(
            f"cannot make a file name from the game's name {info.name!r}: set name (letters, digits, . _ - +)"
        )
    version = opts.version or info.version
    if not version:
        raise BuildError(
            f"{opts.project}/project.godot has no application/config/version: set it in Project Settings >"
            " Application > Config > Version (or pass version)"
        )
    if not VERSION_PATTERN.match(version):
        raise BuildError(f"the version {version!r} is not usable in file names: use letters, digits, . _ - +")
    presets = _read_presets(opts.project)
    if opts.preset and presets.find(opts.preset) is None:
        known = ", ".join(repr(n) for n in presets.names()) or "none"
        raise BuildError(
            f"the project has no export preset named {opts.preset!r} (it has: {known}); leave preset empty to"
            " use its dedicated-server preset or a generated one"
        )
    arch = opts.architecture
    files = {
        "pack": f"{name}-{version}.pck",
        "exported": f"{name}-{version}-linux-{arch}.tar.gz",
        "runtime": f"{name}-{version}-runtime-linux-{arch}.tar.gz",
        "portable": f"{name}-{version}-portable-linux-{arch}.tar.gz",
    }
    inputs = json.dumps(
        {
            "format": FORMAT,
            "project": tree_digest(opts.project),
            "engine": _engine_identity(opts),
            "artifacts": sorted(opts.artifacts),
            "name": name,
            "version": version,
            "preset": opts.preset,
            "architecture": arch,
            "epoch": opts.source_date_epoch,
            "script": BUILD_SCRIPT,
        },
        sort_keys=True,
    )
    stamp = hashlib.sha256(inputs.encode()).hexdigest()
    warnings = []
    missing_uid = scripts_without_uid(opts.project)
    if missing_uid:
        warnings.append(
            f"{len(missing_uid)} script(s) have no .uid file beside them ({', '.join(missing_uid[:3])}"
            f"{', ...' if len(missing_uid) > 3 else ''}): Godot gives them random UIDs on import, so two builds"
            " differ. Open the project once in Godot 4.4+ and commit the .uid files."
        )
    unsaved = scenes_without_node_ids(opts.project, info.engine_features)
    if unsaved:
        warnings.append(
            f"{len(unsaved)} scene(s) have nodes without unique_id ({', '.join(unsaved[:3])}"
            f"{', ...' if len(unsaved) > 3 else ''}): Godot 4.6 gives them random ids on import, so two builds"
            " differ. Open and save them once in the Godot 4.6 editor."
        )
    return Plan(name, version, stamp, {a: files[a] for a in ARTIFACTS if a in opts.artifacts}, warnings)


def _read_presets(project: str) -> ExportPresets:
    path = os.path.join(project, "export_presets.cfg")
    if not os.path.isfile(path):
        return ExportPresets()
    with open(path, encoding="utf-8") as handle:
        return ExportPresets(handle.read())


def current(opts: Options, build: Plan) -> dict[str, Any] | None:
    """The manifest in dest when it is this build's and every file it lists is intact, else None."""
    try:
        with open(os.path.join(opts.dest, MANIFEST), encoding="utf-8") as handle:
            manifest: dict[str, Any] = json.load(handle)
    except (OSError, ValueError):
        return None
    if manifest.get("stamp") != build.stamp:
        return None
    for entry in manifest.get("files", {}).values():
        path = os.path.join(opts.dest, entry["file"])
        if not os.path.isfile(path) or file_digest(path) != entry["sha256"]:
            return None
    return manifest


def _prepare_presets(project_copy: str, opts: Options, template: str) -> tuple[str, bool]:
    """Chooses (or adds) the export preset and points it at the template; returns its name and whether it is
    a dedicated-server preset."""
    presets = _read_presets(project_copy)
    found = presets.find(opts.preset) if opts.preset else presets.find_dedicated_server()
    if found is None and opts.preset:
        raise BuildError(f"the project has no export preset named {opts.preset!r}")
    index = presets.add_dedicated_server() if found is None else found
    preset = presets.preset(index)
    if (preset.get("platform") or "").strip() != '"Linux"':
        raise BuildError(f"the export preset {opts.preset!r} is not a Linux preset: name a Linux one")
    options = [("binary_format/embed_pck", "false"), ("binary_format/architecture", quote(opts.architecture))]
    if template:
        options.append(("custom_template/release", quote(template)))
    presets.set_options(index, options)
    with open(os.path.join(project_copy, "export_presets.cfg"), "w", encoding="utf-8") as handle:
        handle.write(presets.render())
    name = (preset.get("name") or quote(SERVER_PRESET_NAME)).strip()[1:-1]
    return name, (preset.get("dedicated_server") or "").strip() == "true"


def _run_script(opts: Options, work: str, env: dict[str, str], timeout: int) -> None:
    if opts.container_image:
        command = [opts.podman, "run", "--rm", "-i", "--network", "none", "-v", f"{work}:{CONTAINER_WORK}:Z"]
        for key, value in env.items():
            command += ["-e", f"{key}={value}"]
        command += [opts.container_image, "sh", "-s"]
        run_env = None
    else:
        command = ["sh", "-s"]
        run_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", **env}
    try:
        result = subprocess.run(
            command, input=BUILD_SCRIPT, capture_output=True, text=True, env=run_env, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise BuildError(f"the export did not finish within {timeout} s") from exc
    except OSError as exc:
        raise BuildError(f"cannot start {command[0]}: {exc}") from exc
    if result.returncode != 0:
        where = f"in the image {opts.container_image}" if opts.container_image else "on the build host"
        raise BuildError(f"the export failed {where} (exit {result.returncode}):\n{result.stderr.strip()}")


def build(opts: Options, build_plan: Plan, timeout: int = 900) -> dict[str, Any]:
    """Exports, packs and publishes the release into dest; returns its manifest."""
    os.makedirs(opts.dest, exist_ok=True)
    work = tempfile.mkdtemp(prefix=".godot-export-", dir=opts.dest)
    try:
        copy = os.path.join(work, "project")
        os.makedirs(copy)
        for rel in project_files(opts.project):
            target = os.path.join(copy, rel)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copy2(os.path.join(opts.project, rel), target)
        root = CONTAINER_WORK if opts.container_image else work
        engine, template = opts.engine, opts.export_template
        if not opts.container_image:
            # Godot's official downloads are zips: the editor alone in one, the templates in a .tpz
            engine = _unzipped(engine, "", work)
            if template:
                template = _unzipped(template, f"templates/linux_release.{opts.architecture}", work)
        preset, dedicated = _prepare_presets(copy, opts, template)
        env = {
            "WORK": root,
            "ENGINE": engine,
            "PRESET": preset,
            "NAME": build_plan.name,
            "ARCH": opts.architecture,
            "DLOPEN": " ".join(DLOPEN_LIBRARIES),
        }
        env.update({f"WANT_{a.upper()}": "1" if a in build_plan.files else "" for a in ARTIFACTS})
        _run_script(opts, work, env, timeout)
        out = os.path.join(work, "out")
        with open(os.path.join(out, "engine-version"), encoding="utf-8") as handle:
            engine_version = (handle.read().strip().splitlines() or [""])[-1]
        staged = _pack(out, build_plan, opts.architecture, opts.source_date_epoch)
        return _publish(opts, build_plan, staged, out, preset, dedicated, engine_version)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _pack(out: str, build_plan: Plan, architecture: str, epoch: int) -> dict[str, str]:
    """The artifacts as files in out/: artifact -> path."""
    name = build_plan.name
    staged = {}
    pck = f"{name}.pck"
    for artifact, file_name in build_plan.files.items():
        path = os.path.join(out, file_name)
        if artifact == "pack":
            shutil.copyfile(os.path.join(out, "game.pck"), path)
        elif artifact == "exported":
            exe = f"{name}.{architecture}"
            members = [(exe, os.path.join(out, "exported", exe)), (pck, os.path.join(out, "exported", pck))]
            write_tar_gz(path, members, epoch)
        else:
            directory = os.path.join(out, artifact)
            members = [(rel, os.path.join(directory, rel)) for rel in project_files(directory)]
            members.append((pck, os.path.join(out, "game.pck")))
            write_tar_gz(path, sorted(members), epoch)
        staged[artifact] = path
    return staged


def deploy_variables(artifact: str, name: str, architecture: str) -> dict[str, str]:
    """The godot_server role variables that run an artifact."""
    if artifact == "exported":
        return {"godot_server_style": "exported", "godot_server_executable": f"{name}.{architecture}"}
    if artifact in ("runtime", "portable"):
        return {
            "godot_server_style": "runtime",
            "godot_server_executable": "godot",
            "godot_server_main_pack": f"{name}.pck",
        }
    return {}


def _publish(
    opts: Options, build_plan: Plan, staged: dict[str, str], out: str, preset: str, dedicated: bool, engine: str
) -> dict[str, Any]:
    files: dict[str, dict[str, Any]] = {}
    for artifact, path in staged.items():
        files[artifact] = {
            "file": os.path.basename(path),
            "sha256": file_digest(path),
            "sha512": file_digest(path, "sha512"),
            "size": os.path.getsize(path),
            "deploy": deploy_variables(artifact, build_plan.name, opts.architecture),
        }
    ordered = [files[a] for a in ARTIFACTS if a in files]
    texts = {
        "SHA256SUMS": "".join(f"{f['sha256']}  {f['file']}\n" for f in ordered),
        "SHA512SUMS": "".join(f"{f['sha512']}  {f['file']}\n" for f in ordered),
        "VERSION": build_plan.version + "\n",
        "RELEASE": build_plan.release + "\n",
    }
    for file_name, text in texts.items():
        with open(os.path.join(out, file_name), "w", encoding="utf-8") as handle:
            handle.write(text)
    manifest = {
        "name": build_plan.name,
        "version": build_plan.version,
        "release": build_plan.release,
        "engine": engine,
        "preset": preset,
        "dedicated_server": dedicated,
        "stamp": build_plan.stamp,
        "files": files,
    }
    old = _old_files(opts.dest)
    for artifact, path in staged.items():
        os.replace(path, os.path.join(opts.dest, files[artifact]["file"]))
    for file_name in texts:
        os.replace(os.path.join(out, file_name), os.path.join(opts.dest, file_name))
    for stale in old - {f["file"] for f in ordered}:
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(opts.dest, stale))
    manifest_tmp = os.path.join(out, MANIFEST)
    with open(manifest_tmp, "w", encoding="utf-8") as handle:
        json.dump(manifest, handle, indent=2, sort_keys=True)
        handle.write("\n")
    os.replace(manifest_tmp, os.path.join(opts.dest, MANIFEST))
    return manifest


def _old_files(dest: str) -> set[str]:
    """The artifacts of the build dest held before (a new build replaces them)."""
    try:
        with open(os.path.join(dest, MANIFEST), encoding="utf-8") as handle:
            return {entry["file"] for entry in json.load(handle).get("files", {}).values()}
    except (OSError, ValueError, KeyError, AttributeError):
        return set()


def _unzipped(path: str, wanted: str, work: str) -> str:
    """The file itself, or for a .zip/.tpz the member whose path ends with `wanted` (any single file when
    `wanted` is empty: the official editor zip holds the editor alone), extracted into work/ as an executable."""
    if not zipfile.is_zipfile(path):
        return path
    with zipfile.ZipFile(path) as zipped:
        names = [n for n in zipped.namelist() if not n.endswith("/")]
        if wanted:
            names = [n for n in names if n == wanted or n.endswith("/" + wanted)]
        if len(names) != 1:
            what = wanted or "exactly one file (the editor)"
            raise BuildError(f"{path} holds {len(names)} candidates for {what}: {', '.join(names[:5])}")
        target = os.path.join(work, "unzipped", os.path.basename(names[0]))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with zipped.open(names[0]) as source, open(target, "wb") as handle:
            shutil.copyfileobj(source, handle)
    os.chmod(target, 0o755)
    return target
