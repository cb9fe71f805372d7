"""POST /defended-classify: purify, then classify; flag suspected adversarial inputs."""

from fastapi import APIRouter

from service.deps import ApiKey, ImagesDep, PurifierDep, ServedDep
from service.inference import encode_defended
from service.routes.common import answer
from service.schemas import ERROR_RESPONSES, IMAGE_BODY, DefendedResponse

router = APIRouter(prefix="/defended-classify", tags=["models"], dependencies=[ApiKey])


@router.post(
    "",
    response_model=DefendedResponse | list[DefendedResponse],
    responses=ERROR_RESPONSES,
    openapi_extra=IMAGE_BODY,
    summary="Purify with the autoencoder, then classify; compare with the undefended prediction",
)
async def defended_classify(
    served: ServedDep, purifier: PurifierDep, images: ImagesDep
) -> DefendedResponse | list[DefendedResponse]:
    manifest = served.artifacts.manifest
    model = served.artifacts.model_id(manifest.classifier)
    return await answer(
        served, images, f"defend:{purifier}", lambda r, ms: encode_defended(r, manifest.class_names, model, ms)
    )
