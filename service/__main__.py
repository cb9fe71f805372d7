"""``python -m service``: check settings and artifacts, then serve ``service.app:app`` under uvicorn."""

import logging

import uvicorn
from pydantic import ValidationError

from service.artifacts import verify_dataset
from service.config import get_settings
from service.errors import ArtifactError

logger = logging.getLogger("service")


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:  # fail before uvicorn starts, with one line instead of a lifespan traceback
        settings = get_settings()
        logging.getLogger().setLevel(settings.log_level.upper())
        for dataset in settings.datasets:
            verify_dataset(settings.artifacts_dir / dataset)
    except ValidationError as exc:
        logger.error("start-up failed: invalid PURIFIER_* settings: %s", str(exc).replace("\n", " "))
        raise SystemExit(1) from None
    except ArtifactError as exc:
        logger.error("start-up failed: %s", exc)
        raise SystemExit(1) from None
    uvicorn.run("service.app:app", host=settings.host, port=settings.port, log_level=settings.log_level)


if __name__ == "__main__":
    main()
