"""POST /defended-classify: a pipeline (purify, then classify); flag suspected adversarial inputs."""

from fastapi import APIRouter

from service.deps import ApiKey, DefendDep, ImagesDep
from service.schemas import ERROR_RESPONSES, IMAGE_BODY, DefendedResponse

router = APIRouter(prefix="/defended-classify", tags=["models"], dependencies=[ApiKey])


@router.post(
    "",
    response_model=DefendedResponse | list[DefendedResponse],
    responses=ERROR_RESPONSES,
    openapi_extra=IMAGE_BODY,
    summary="Run a pipeline (?pipeline=, default: the manifest's) and compare with the undefended prediction",
)
async def defended_classify(defend: DefendDep, images: ImagesDep) -> DefendedResponse | list[DefendedResponse]:
    return await defend.answer(images.tensors, images.is_batch)
