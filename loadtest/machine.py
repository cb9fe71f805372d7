"""What a measurement ran on and how busy the machine was: recorded beside every figure."""

import datetime
import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path

import torch

from service.config import REPO_ROOT


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git_commit() -> str | None:
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], check=False, cwd=REPO_ROOT, capture_output=True, text=True
    )
    return (done.stdout.strip() or None) if done.returncode == 0 else None


PACKAGES = ("fastapi", "uvicorn", "uvloop", "httptools", "pydantic", "litserve", "locust")


def _versions() -> dict[str, str | None]:
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return versions


def load_average() -> list[float]:
    """1, 5 and 15-minute load averages (runnable processes, all users), rounded."""
    return [round(value, 2) for value in os.getloadavg()]


def machine() -> dict:
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "cpu": _cpu_model(),
        "logical_cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "packages": _versions(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "git_commit": _git_commit(),
        "load_average": load_average(),
    }
