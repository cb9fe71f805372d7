"""Where an image's bytes go, measured inside the running container: ``python - < deploy/image_sizes.py``
(or ``python deploy/image_sizes.py VENV ARTIFACTS`` for another environment).

Prints JSON: the virtual environment's size split into the parts docs/deploy.md names (the NVIDIA libraries,
torch, triton, the rest), the artifacts, and the bytecode and test folders spread through the environment.
Sizes are bytes on disk of regular files, each counted once."""

import json
import os
import sys
from pathlib import Path

VENV, ARTIFACTS = (Path(p) for p in (sys.argv[1:3] if len(sys.argv) == 3 else ("/opt/venv", "/app/artifacts")))


def size(root: Path, where=lambda path: True) -> int:
    total = 0
    for folder, _, files in os.walk(root):
        for name in files:
            path = Path(folder, name)
            if not path.is_symlink() and where(path):
                total += path.stat().st_size
    return total


site = next(VENV.glob("lib/python*/site-packages"))
parts = {name: size(site / name) for name in ("nvidia", "torch", "triton")}
venv = size(VENV)
parts["the rest"] = venv - sum(parts.values())
json.dump({
    "python": sys.version.split()[0],
    "venv_bytes": venv,
    "venv_parts_bytes": parts,
    "nvidia_bytes": {p.name: size(p) for p in sorted((site / "nvidia").iterdir()) if p.is_dir()},
    "artifacts_bytes": size(ARTIFACTS),
    "bytecode_bytes": size(VENV, lambda p: "__pycache__" in p.parts),
    "test_folders_bytes": size(VENV, lambda p: any(part in ("tests", "test", "testing") for part in p.parts)),
}, sys.stdout, indent=1)
