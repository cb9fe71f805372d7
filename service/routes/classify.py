"""POST /classify: the bundled classifier on the image as given."""

from fastapi import APIRouter

from service.deps import ApiKey, ImagesDep, ServedDep
from service.inference import encode_classified
from service.routes.common import answer
from service.schemas import ERROR_RESPONSES, IMAGE_BODY, ClassifyResponse

router = APIRouter(prefix="/classify", tags=["models"], dependencies=[ApiKey])


@router.post(
    "",
    response_model=ClassifyResponse | list[ClassifyResponse],
    responses=ERROR_RESPONSES,
    openapi_extra=IMAGE_BODY,
    summary="Classify an image (or a JSON batch) without defence",
)
async def classify(served: ServedDep, images: ImagesDep) -> ClassifyResponse | list[ClassifyResponse]:
    manifest = served.artifacts.manifest
    model = served.artifacts.model_id(manifest.classifier)
    return await answer(served, images, "classify", lambda r, ms: encode_classified(r, manifest.class_names, model, ms))
