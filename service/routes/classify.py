"""POST /classify: the manifest's classifier on the image as given."""

from fastapi import APIRouter

from service.deps import ApiKey, ImagesDep, ServedDep
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
    return await served.classify.answer(images.tensors, images.is_batch)
