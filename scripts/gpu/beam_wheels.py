#!/usr/bin/env python3
"""Requirement checks for the apache-beam wheels that travel to the GPU machine (scripts/gpu/fetch-beam-wheels.sh
downloads them, scripts/gpu/beam-gpu.sh installs them there).

    beam_wheels.py closure WHEEL_DIR PIN_DIR NAME...
        On the development machine. Follows the Requires-Dist lines of every wheel in WHEEL_DIR (extras
        skipped, markers evaluated for CPython 3.12 on Linux x86-64) and fails when a requirement is neither
        a wheel of WHEEL_DIR or PIN_DIR nor one of the NAMEs (the packages the GPU image is known to hold).

    beam_wheels.py pins WHEEL_DIR PIN_DIR
        On the GPU machine, before installing. For every requirement of the wheels in WHEEL_DIR that no wheel
        there provides, compares the installed version with the requirement. A violated requirement is met
        by a wheel of PIN_DIR when one satisfies it: its path is printed on stdout (one a line) for the
        installer. Every requirement, with the version found and the verdict, is reported on stderr. Exit
        status 1 when a requirement is missing or violated and no pin wheel meets it (the install still goes
        on; the report says what may break).

Reads only the wheels' METADATA; installs nothing.
"""

from __future__ import annotations

import re
import sys
import zipfile
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version


def wheel_meta(path: Path) -> tuple[str, Version, list[Requirement]]:
    """(canonical name, version, requirements) read from the METADATA inside a wheel."""
    with zipfile.ZipFile(path) as z:
        name = next(n for n in z.namelist() if re.fullmatch(r"[^/]+\.dist-info/METADATA", n))
        text = z.read(name).decode("utf-8", "replace")
    head = text.split("\n\n", 1)[0]
    fields = [line.split(": ", 1) for line in head.splitlines() if ": " in line]
    pkg = next(v for k, v in fields if k == "Name")
    ver = next(v for k, v in fields if k == "Version")
    reqs = [Requirement(v) for k, v in fields if k == "Requires-Dist"]
    return canonicalize_name(pkg), Version(ver), reqs


def applies(req: Requirement, env: dict) -> bool:
    """True for a requirement of the base package (no extra) whose marker holds in env."""
    if req.marker is None:
        return True
    return req.marker.evaluate(dict(env, extra=""))


def wheels(folder: Path) -> dict:
    return {n: (v, r, p) for p in sorted(folder.glob("*.whl")) for n, v, r in [wheel_meta(p)]}


def target_env() -> dict:
    env = default_environment()
    env.update(python_version="3.12", python_full_version="3.12.3", implementation_name="cpython",
               platform_python_implementation="CPython", sys_platform="linux", platform_system="Linux",
               platform_machine="x86_64", os_name="posix")
    return env


def closure(wheel_dir: Path, pin_dir: Path, known: list[str]) -> int:
    have = wheels(wheel_dir)
    pins = wheels(pin_dir) if pin_dir.is_dir() else {}
    known_c = {canonicalize_name(k) for k in known}
    env = target_env()
    bad = 0
    for name, (ver, reqs, path) in sorted(have.items()):
        for req in reqs:
            if not applies(req, env):
                continue
            dep = canonicalize_name(req.name)
            if dep in have:
                ok = req.specifier.contains(have[dep][0], prereleases=True)
                where = f"wheel {have[dep][0]}" + ("" if ok else " (VIOLATES)")
            elif dep in pins:
                ok, where = True, f"device's, else pin wheel {pins[dep][0]}"
            elif dep in known_c:
                ok, where = True, "device's (version checked there)"
            else:
                ok, where = False, "NOT PROVIDED"
            bad += not ok
            print(f"{name} {ver}: {req}  -> {where}")
    print(f"closure: {len(have)} wheels, {bad} requirement(s) not provided")
    return 1 if bad else 0


def pins(wheel_dir: Path, pin_dir: Path) -> int:
    have = wheels(wheel_dir)
    pin = wheels(pin_dir) if pin_dir.is_dir() else {}
    env = default_environment()
    chosen: dict = {}
    unmet = 0
    seen = set()
    for name, (_ver, reqs, _path) in sorted(have.items()):
        for req in reqs:
            dep = canonicalize_name(req.name)
            if not applies(req, env) or dep in have or (dep, str(req.specifier)) in seen:
                continue
            seen.add((dep, str(req.specifier)))
            try:
                installed = Version(metadata.version(dep))
            except metadata.PackageNotFoundError:
                installed = None
            if installed is not None and req.specifier.contains(installed, prereleases=True):
                verdict = "ok"
            elif dep in pin and req.specifier.contains(pin[dep][0], prereleases=True):
                chosen[dep] = pin[dep][2]
                verdict = f"{'violated' if installed else 'missing'}: pin wheel {pin[dep][0]} installed instead"
            else:
                unmet += 1
                verdict = "VIOLATED, no pin wheel" if installed else "MISSING, no pin wheel"
            print(f"{dep:20s} device {str(installed):12s} {name} needs {req.specifier or 'any'}: {verdict}",
                  file=sys.stderr)
    # a chosen pin must also satisfy every other requirement on the same package
    for dep, path in chosen.items():
        for name, (_ver, reqs, _p) in have.items():
            for req in reqs:
                if canonicalize_name(req.name) == dep and applies(req, env) and \
                        not req.specifier.contains(pin[dep][0], prereleases=True):
                    print(f"{dep}: pin {pin[dep][0]} violates {name}'s {req}", file=sys.stderr)
                    unmet += 1
        print(path)
    return 1 if unmet else 0


def main(argv: list[str]) -> int:
    if len(argv) >= 3 and argv[0] == "closure":
        return closure(Path(argv[1]), Path(argv[2]), argv[3:])
    if len(argv) == 3 and argv[0] == "pins":
        return pins(Path(argv[1]), Path(argv[2]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
