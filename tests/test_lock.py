"""requirements/*.lock: exact, hashed versions that agree with pyproject.toml and are installed.

``make lock`` (requirements/lock.sh, uv) writes them; ``make`` installs requirements/dev.lock,
the image requirements/runtime.lock. These checks read the files only (no resolver, no network):
every dependency of pyproject.toml is pinned with a version its specifier accepts, the two files
pin the same versions, and the Makefile and the Dockerfile install from them with hashes.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
RUNTIME_LOCK = ROOT / "requirements" / "runtime.lock"
DEV_LOCK = ROOT / "requirements" / "dev.lock"
STALE = "out of date with pyproject.toml: run `make lock` and commit requirements/"


@dataclass(frozen=True)
class Pin:
    name: str
    version: str
    marker: str
    hashes: tuple[str, ...]


@cache
def pins(lock: Path) -> dict[str, list[Pin]]:
    """Canonical name -> its pins (one per marker branch) of a `uv pip compile` output."""
    out: dict[str, list[Pin]] = {}
    text = lock.read_text("utf-8")
    for entry in re.split(r"\n(?=[A-Za-z0-9])", text):
        head = entry.split("\n", 1)[0]
        if not head or head.startswith("#"):
            continue
        joined = " ".join(line.split("#", 1)[0].rstrip("\\ ") for line in entry.splitlines())
        m = re.match(r"([A-Za-z0-9._-]+)==(\S+)\s*(?:;\s*(.*?))?\s*(?=--hash|$)", joined)
        assert m, f"{lock.name}: not an exact pin: {head!r}"
        hashes = tuple(re.findall(r"--hash=sha256:([0-9a-f]{64})", joined))
        name = canonicalize_name(m.group(1))
        out.setdefault(name, []).append(Pin(name, m.group(2), m.group(3) or "", hashes))
    return out


@cache
def project() -> dict[str, object]:
    data: dict[str, object] = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    return data


def requirements(*extras: str) -> list[Requirement]:
    """The runtime dependencies plus the named extras, self-references (smda[x]) expanded."""
    optional: dict[str, list[str]] = project()["optional-dependencies"]  # type: ignore[assignment]
    todo, seen, out = list(extras), set(), [Requirement(r) for r in project()["dependencies"]]  # type: ignore[attr-defined]
    while todo:
        extra = todo.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for text in optional[extra]:
            req = Requirement(text)
            if canonicalize_name(req.name) == canonicalize_name(str(project()["name"])):
                todo += sorted(req.extras)
            else:
                out.append(req)
    return out


@pytest.mark.parametrize(
    ("lock", "extras"), [(RUNTIME_LOCK, ("compiled",)), (DEV_LOCK, ("dev", "compiled"))]
)
def test_every_dependency_of_pyproject_is_pinned_to_a_version_it_accepts(
    lock: Path, extras: tuple[str, ...]
) -> None:
    locked = pins(lock)
    problems = []
    for req in requirements(*extras):
        found = locked.get(canonicalize_name(req.name))
        if not found:
            problems.append(f"{req} is not in {lock.name}")
            continue
        for pin in found:
            if not req.specifier.contains(pin.version, prereleases=True):
                problems.append(
                    f"{lock.name} pins {pin.name}=={pin.version}, pyproject wants {req}"
                )
    assert not problems, f"{lock.name} {STALE}:\n" + "\n".join(problems)


@pytest.mark.parametrize("lock", [RUNTIME_LOCK, DEV_LOCK])
def test_every_pin_is_exact_and_hashed(lock: Path) -> None:
    locked = pins(lock)
    assert len(locked) > 50, f"{lock.name} looks truncated ({len(locked)} packages)"
    unhashed = [p.name for found in locked.values() for p in found if not p.hashes]
    assert not unhashed, f"{lock.name}: no --hash for {unhashed} ({STALE})"
    text = lock.read_text("utf-8")
    assert not re.search(r"^(<<<<<<<|=======|>>>>>>>)", text, re.MULTILINE), (
        f"{lock.name} has merge-conflict markers: run `make lock`"
    )
    assert "#    make lock" in text, f"{lock.name} was not written by `make lock`"


def test_runtime_and_dev_locks_pin_the_same_versions() -> None:
    runtime, dev = pins(RUNTIME_LOCK), pins(DEV_LOCK)
    missing = sorted(set(runtime) - set(dev))
    assert not missing, f"in runtime.lock but not in dev.lock: {missing} ({STALE})"
    differ = [
        f"{name}: runtime {[p.version for p in runtime[name]]} dev {[p.version for p in dev[name]]}"
        for name in runtime
        if {p.version for p in runtime[name]} != {p.version for p in dev[name]}
    ]
    assert not differ, "the two lock files disagree:\n" + "\n".join(differ)


def test_the_dev_lock_does_not_pin_smda_itself() -> None:
    for lock in (RUNTIME_LOCK, DEV_LOCK):
        assert canonicalize_name(str(project()["name"])) not in pins(lock), lock.name


# -- the installers use the locks -----------------------------------------------------------------


def recipe(target_prefix: str) -> tuple[str, list[str]]:
    """(prerequisites, commands) of the Makefile rule whose target starts with target_prefix."""
    text = (ROOT / "Makefile").read_text("utf-8")
    m = re.search(
        rf"^{re.escape(target_prefix)}[^:\n]*:([^\n]*)\n((?:\t[^\n]*\n)+)", text, re.MULTILINE
    )
    assert m, f"no Makefile rule {target_prefix}"
    variables = dict(re.findall(r"^(\w+)\s*\??=\s*(\S+)", text, re.MULTILINE))

    def expand(s: str) -> str:
        return re.sub(r"\$\((\w+)\)", lambda v: variables.get(v.group(1), v.group(0)), s)

    return expand(m.group(1)), [expand(line.strip()) for line in m.group(2).splitlines()]


def test_make_installs_the_dev_lock_with_hashes_then_smda_without_dependencies() -> None:
    prereqs, commands = recipe("$(STAMP)")
    assert "requirements/dev.lock" in prereqs.split(), (
        "the venv must be rebuilt when the lock moves"
    )
    installs = [shlex.split(c) for c in commands if "pip install" in c]
    lock_install = [c for c in installs if "requirements/dev.lock" in c]
    assert lock_install and "--require-hashes" in lock_install[0], installs
    [project_install] = [c for c in installs if "." in c or "-e" in c]
    assert "--no-deps" in project_install, "smda itself must not resolve anything"
    assert installs.index(lock_install[0]) < installs.index(project_install)


def test_make_lock_refreshes_both_files() -> None:
    _, commands = recipe("lock")
    assert any("requirements/lock.sh" in c for c in commands)
    script = (ROOT / "requirements" / "lock.sh").read_text("utf-8")
    for needle in ("--universal", "--generate-hashes", "requirements/dev.lock", "runtime.lock"):
        assert needle in script, needle


def test_the_image_installs_the_runtime_lock_with_hashes_then_smda_without_dependencies() -> None:
    from test_docker import stages

    build = stages()[1]
    runs = [shlex.split(a) for k, a in build if k == "RUN" and "pip install" in a]
    copies = " ".join(a for k, a in build if k == "COPY")
    assert "requirements/runtime.lock" in copies
    [lock_install] = [r for r in runs if "requirements/runtime.lock" in r]
    assert "--require-hashes" in lock_install
    [project_install] = [r for r in runs if r[-1] == "."]
    assert "--no-deps" in project_install
    assert runs.index(lock_install) < runs.index(project_install)
    ignore = (ROOT / "docker" / "Dockerfile.dockerignore").read_text("utf-8").splitlines()
    assert "!requirements/runtime.lock" in ignore, "the lock must reach the build context"


def test_the_deployments_name_the_locked_prefect() -> None:
    import yaml

    declared = yaml.safe_load((ROOT / "deployments" / "prefect.yaml").read_text("utf-8"))
    locked = {pin.version for pin in pins(RUNTIME_LOCK)["prefect"]}
    assert locked == {str(declared["prefect-version"])}, (
        f"deployments/prefect.yaml says prefect-version {declared['prefect-version']}, "
        f"requirements/runtime.lock pins {sorted(locked)}: make them agree"
    )
