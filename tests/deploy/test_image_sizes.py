"""deploy/image_sizes.py, the part of ``make image-smoke`` that says where the image's bytes go, on a small tree."""

import json
import subprocess
import sys
from pathlib import Path

from service.config import REPO_ROOT


def test_the_parts_add_up_to_the_environment_and_each_file_counts_once(tmp_path: Path) -> None:
    site = tmp_path / "venv" / "lib" / "python3.11" / "site-packages"
    files = {"nvidia/cu13/lib.so": 700, "nvidia/cudnn/lib.so": 300, "torch/lib.so": 200, "triton/x.so": 50,
             "numpy/__pycache__/a.pyc": 30, "numpy/tests/test_a.py": 20, "pillow.py": 5}
    for name, size in files.items():
        (site / name).parent.mkdir(parents=True, exist_ok=True)
        (site / name).write_bytes(b"x" * size)
    (site / "link.so").symlink_to(site / "torch" / "lib.so")  # counted once, as the file it names
    (tmp_path / "artifacts").mkdir()
    (tmp_path / "artifacts" / "model.pt").write_bytes(b"x" * 9)
    done = subprocess.run([sys.executable, str(REPO_ROOT / "deploy" / "image_sizes.py"), str(tmp_path / "venv"),
                           str(tmp_path / "artifacts")], capture_output=True, text=True, check=True)
    found = json.loads(done.stdout)
    assert found["venv_bytes"] == sum(files.values()) == sum(found["venv_parts_bytes"].values())
    assert found["venv_parts_bytes"] == {"nvidia": 1000, "torch": 200, "triton": 50, "the rest": 55}
    assert found["nvidia_bytes"] == {"cu13": 700, "cudnn": 300}
    assert (found["artifacts_bytes"], found["bytecode_bytes"], found["test_folders_bytes"]) == (9, 30, 20)
