"""``python -m service``: check settings and artifacts, then serve ``service.app:app`` under uvicorn."""

import logging
import signal

import uvicorn
from pydantic import ValidationError
from pydantic_settings import SettingsError

from service.artifacts import verify_dataset
from service.config import get_settings
from service.errors import ArtifactError
from service.samples import load_samples

logger = logging.getLogger("service")


def _exit_cleanly(signum: int, frame: object) -> None:
    """uvicorn drains in-flight requests, then re-raises the signal it caught: end with status 0, not killed by it."""
    raise SystemExit(0)


def _settings_problems(exc: ValidationError | SettingsError) -> str:
    """What is wrong, without the values given: a malformed PURIFIER_API_KEYS must not reach the logs."""
    if isinstance(exc, SettingsError):
        return str(exc)
    return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_input=False))


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:  # fail before uvicorn starts, with one line instead of a lifespan traceback
        settings = get_settings()
        logging.getLogger().setLevel(settings.log_level.upper())
        for dataset in settings.datasets:
            folder = settings.artifacts_dir / dataset
            load_samples(folder, verify_dataset(folder).manifest)
    except (ValidationError, SettingsError) as exc:
        logger.error("start-up failed: invalid PURIFIER_* settings: %s", _settings_problems(exc))
        raise SystemExit(1) from None
    except ArtifactError as exc:
        logger.error("start-up failed: %s", exc)
        raise SystemExit(1) from None
    for stop in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop, _exit_cleanly)
    uvicorn.run(
        "service.app:app",
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        workers=settings.worker_count,
        timeout_graceful_shutdown=settings.shutdown_timeout_s,
    )


if __name__ == "__main__":
    main()
