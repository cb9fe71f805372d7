"""docker-compose.yml: valid against the Compose Specification, with the profiles docs/deploy.md describes."""

import subprocess
import sys
from pathlib import Path

import yaml

from service.config import REPO_ROOT, Settings
from tests.deploy.files import COMPOSE, PROMETHEUS, compose, load_yaml

CHECK_JSONSCHEMA = Path(sys.executable).parent / "check-jsonschema"
# Fixed by the image (PURIFIER_HOST, _PORT, _ARTIFACTS_DIR) or by each compose service (PURIFIER_DEVICE).
NOT_PASSED_THROUGH = {"host", "port", "artifacts_dir", "device"}


def compose_spec_errors(path: Path) -> str:
    done = subprocess.run(
        [CHECK_JSONSCHEMA, "--builtin-schema", "vendor.compose-spec", path], check=False, capture_output=True, text=True
    )
    return "" if done.returncode == 0 else done.stdout + done.stderr


def test_compose_file_follows_the_compose_spec() -> None:
    assert compose_spec_errors(COMPOSE) == ""


def test_compose_spec_check_rejects_a_bad_file(tmp_path: Path) -> None:
    broken = compose()
    broken["services"]["purifier"]["healthcheck"]["intervall"] = "30s"
    (tmp_path / "docker-compose.yml").write_text(yaml.safe_dump(broken))
    assert "intervall" in compose_spec_errors(tmp_path / "docker-compose.yml")


def test_purifier_runs_on_cpu_by_default_with_healthcheck_and_restart() -> None:
    purifier = compose()["services"]["purifier"]
    assert "profiles" not in purifier
    assert purifier["environment"]["PURIFIER_DEVICE"] == "cpu"
    assert purifier["restart"] in ("always", "unless-stopped", "on-failure")
    assert purifier["healthcheck"]["test"][0] == "CMD"
    assert purifier["ports"] == ["${PURIFIER_HOST_PORT:-8000}:8000"]


def test_gpu_profile_reserves_an_nvidia_gpu_for_the_same_image() -> None:
    services = compose()["services"]
    gpu = services["purifier-gpu"]
    assert gpu["profiles"] == ["gpu"]
    assert gpu["image"] == services["purifier"]["image"]
    assert gpu["environment"]["PURIFIER_DEVICE"] == "cuda"
    (device,) = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]


def test_every_operator_setting_passes_through_to_both_services() -> None:
    """A setting added to service/config.py must be settable under compose too (or be listed as fixed above)."""
    expected = {f"PURIFIER_{name.upper()}" for name in Settings.model_fields} - {
        f"PURIFIER_{name.upper()}" for name in NOT_PASSED_THROUGH
    }
    for name in ("purifier", "purifier-gpu"):
        environment = compose()["services"][name]["environment"]
        passed = {key for key, value in environment.items() if value is None}
        assert passed == expected, f"{name}: missing {expected - passed}, unknown {passed - expected}"


def test_monitoring_profile_scrapes_every_purifier_container() -> None:
    services = compose()["services"]
    prometheus = services["prometheus"]
    assert prometheus["profiles"] == ["monitoring"]
    mounted = {volume.split(":")[0] for volume in prometheus["volumes"]}
    assert mounted == {"./" + str(PROMETHEUS.relative_to(REPO_ROOT))}
    (job,) = load_yaml(PROMETHEUS)["scrape_configs"]
    (discovery,) = job["dns_sd_configs"]
    for name in ("purifier", "purifier-gpu"):
        assert discovery["names"] == services[name]["networks"]["default"]["aliases"]
    assert discovery["port"] == 8000
