"""docker-compose.yml: valid against the Compose Specification, with the profiles docs/deploy.md describes."""

import os
import re
import subprocess
import sys
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import yaml

from service.config import REPO_ROOT, Settings
from tests.deploy.files import (
    COMPOSE,
    PROMETHEUS,
    compose,
    dockerfile_instructions,
    dockerfile_pairs,
    load_yaml,
    stage,
)

CHECK_JSONSCHEMA = Path(sys.executable).parent / "check-jsonschema"
# Fixed by the image (PURIFIER_HOST, _PORT, _ARTIFACTS_DIR) or by each compose service (PURIFIER_DEVICE).
NOT_PASSED_THROUGH = {"host", "port", "artifacts_dir", "device"}


def locust_env_vars() -> set[str]:
    """The LOCUST_* variables Locust reads, from its parser in a subprocess (importing locust here would
    monkey-patch this test process with gevent)."""
    script = (
        "from locust.argument_parser import get_parser\n"
        "print(*{getattr(a, 'env_var', None) for a in get_parser()._actions} - {None})"
    )
    done = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True)
    return set(done.stdout.split())


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
        # passed as given, or with a default of compose's own: ${NAME:-default}
        passed = {key for key, value in environment.items() if value is None or value.startswith(f"${{{key}:-")}
        assert passed == expected, f"{name}: missing {expected - passed}, unknown {passed - expected}"


def test_the_purifiers_share_one_redis_for_budgets_and_the_detector() -> None:
    services = compose()["services"]
    redis = services["redis"]
    assert "profiles" not in redis and redis["healthcheck"]["test"][0] == "CMD"
    for name in ("purifier", "purifier-gpu"):
        assert services[name]["environment"]["PURIFIER_REDIS_URL"] == "${PURIFIER_REDIS_URL:-redis://redis:6379/0}"
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy"
        assert "PURIFIER_WORKERS" in services[name]["environment"]  # unset: one worker per core, state shared


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


def test_loadtest_profile_runs_the_repo_locustfile_against_purifier() -> None:
    services = compose()["services"]
    loadtest = services["loadtest"]
    assert loadtest["profiles"] == ["loadtest"]
    assert loadtest["depends_on"]["purifier"]["condition"] == "service_healthy"
    environment = loadtest["environment"]
    known = locust_env_vars()
    assert set(environment) <= known, f"not Locust options: {set(environment) - known}"
    target = urlsplit(re.fullmatch(r"\$\{\w+:-(.+)\}", environment["LOCUST_HOST"]).group(1))
    assert (target.hostname, target.port) == ("purifier", 8000) and target.hostname in services

    instructions = dockerfile_instructions()
    image = stage(instructions, loadtest["build"]["target"])
    entrypoint = [i for i in image if i.keyword == "ENTRYPOINT"][-1].exec_form()
    assert entrypoint[:2] == ["locust", "-f"]
    workdir = PurePosixPath([i for i in image if i.keyword == "WORKDIR"][-1].args)
    assert (REPO_ROOT / PurePosixPath(entrypoint[2]).relative_to(workdir)).is_file()
    options = dict(zip(entrypoint[3::2], entrypoint[4::2], strict=True))
    env = dockerfile_pairs(image, "ENV")
    assert options == {"--artifacts": env["PURIFIER_ARTIFACTS_DIR"]}
    assert env["PYTHONPATH"] == str(workdir), "the locustfile imports the loadtest package from the WORKDIR"


def test_the_locustfile_takes_the_arguments_the_image_and_docs_pass(tmp_path: Path) -> None:
    """Locust refuses unknown arguments; ``--list`` parses them all, loads the locustfile and stops."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}  # as the image's PYTHONPATH=/app, its WORKDIR
    arguments = ["--artifacts", REPO_ROOT / "artifacts", "--mix", "purify=1", "--datasets", "mnist", "--api-key", "k"]
    done = subprocess.run(
        [Path(sys.executable).parent / "locust", "-f", REPO_ROOT / "loadtest" / "locustfile.py", *arguments, "--list"],
        check=False,
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0 and "PurifierUser" in done.stdout, done.stderr[-2000:]
