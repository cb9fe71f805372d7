import pytest
from pydantic import ValidationError

from service.config import REPO_ROOT, Settings


def test_defaults_serve_the_bundled_artifacts() -> None:
    settings = Settings()
    assert settings.artifacts_dir == REPO_ROOT / "artifacts"
    assert settings.datasets == ("mnist", "fashion-mnist") and settings.default_dataset == "mnist"
    assert settings.api_keys == ()


def test_environment_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PURIFIER_MAX_BATCH_SIZE", "4")
    monkeypatch.setenv("PURIFIER_DEFAULT_DATASET", "fashion-mnist")
    monkeypatch.setenv("PURIFIER_API_KEYS", '["k1", "k2"]')
    settings = Settings()
    assert settings.max_batch_size == 4 and settings.default_dataset == "fashion-mnist"
    assert [key.get_secret_value() for key in settings.api_keys] == ["k1", "k2"]
    assert "k1" not in repr(settings)


@pytest.mark.parametrize(
    "bad",
    [
        {"max_batch_size": 0},
        {"max_queue_size": 0},
        {"max_wait_ms": -1},
        {"request_timeout_s": 0},
        {"device": "tpu"},
        {"default_dataset": "cifar10"},
        {"datasets": ("mnist",), "default_dataset": "fashion-mnist"},
        {"datasets": ()},
        {"datasets": ("mnist", "mnist")},
    ],
)
def test_bad_values_are_rejected(bad: dict) -> None:
    with pytest.raises(ValidationError):
        Settings(**bad)
