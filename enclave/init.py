"""`enclave init DIR`: a consumer project of your own that builds and passes its tests as made.

The project depends on the contracts' npm package (`@enclave-agents/contracts`, made by
`npm pack`: see packages/contracts), here packed from this checkout into the project's
`vendor/`, or the tarball given with `--package`; its package-lock.json pins what this checkout
is tested with, so `npm ci` installs exactly that.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from enclave.errors import EnclaveError
from protocol.deployment import PROJECT_ROOT

TEMPLATE = Path(__file__).parent / "templates" / "project"
PACK_SCRIPT = PROJECT_ROOT / "scripts" / "pack-contracts.sh"
PACKAGE_JSON = PROJECT_ROOT / "packages" / "contracts" / "package.json"


def init_project(target: Path, package: Path | None = None) -> Path:
    """Writes the project into `target` (which must be new or empty); returns the package used."""
    if target.exists() and any(target.iterdir()):
        raise EnclaveError(f"{target} is not empty: choose a new folder for the project")
    shutil.copytree(TEMPLATE, target, dirs_exist_ok=True)
    vendor = target / "vendor"
    vendor.mkdir()
    if package is not None:
        if not package.is_file():
            raise EnclaveError(f"no package at {package}")
        tarball = vendor / package.name
        shutil.copyfile(package, tarball)
    else:
        tarball = _pack(vendor)
    name = re.sub(r"[^a-z0-9-]+", "-", target.resolve().name.lower()).strip("-") or "enclave-project"
    manifest = {
        "name": name,
        "private": True,
        "dependencies": {"@enclave-agents/contracts": f"file:vendor/{tarball.name}"},
    }
    (target / "package.json").write_text(json.dumps(manifest, indent=2) + "\n")
    (target / "package-lock.json").write_text(json.dumps(_lock(name, tarball), indent=2) + "\n")
    return tarball


def _lock(name: str, tarball: Path) -> dict[str, Any]:
    """The project's package-lock.json: the package and its dependencies pinned at the versions
    this checkout is tested with (its own lock), so that `npm ci` installs exactly those."""
    ours = json.loads((PROJECT_ROOT / "package-lock.json").read_text())["packages"]
    package = json.loads((PACKAGE_JSON).read_text())
    integrity = "sha512-" + base64.b64encode(hashlib.sha512(tarball.read_bytes()).digest()).decode()
    packages: dict[str, Any] = {
        "": {"name": name, "dependencies": {"@enclave-agents/contracts": f"file:vendor/{tarball.name}"}},
        "node_modules/@enclave-agents/contracts": {
            "version": package["version"],
            "resolved": f"file:vendor/{tarball.name}",
            "integrity": integrity,
            "license": package["license"],
            "dependencies": package["dependencies"],
        },
    }
    wanted = list(package["dependencies"])
    while wanted:
        key = f"node_modules/{wanted.pop()}"
        if key in packages:
            continue
        packages[key] = ours[key]
        wanted += list(ours[key].get("dependencies", {}))
    return {"name": name, "lockfileVersion": 3, "requires": True, "packages": packages}


def _pack(destination: Path) -> Path:
    if not PACK_SCRIPT.exists():
        raise EnclaveError("this installation has no checkout to pack the contracts from: pass --package TGZ")
    packed = subprocess.run(  # noqa: S603 - our own script
        [str(PACK_SCRIPT), str(destination.resolve())], capture_output=True, text=True, timeout=300, check=False
    )
    if packed.returncode != 0:
        raise EnclaveError(f"packing the contracts failed: {packed.stderr.strip() or packed.stdout.strip()}")
    return Path(packed.stdout.strip().splitlines()[-1])
