"""POST /defended-classify: a pipeline (purify, then classify); flag suspected adversarial inputs."""

from fastapi import APIRouter, Request

from service.deps import ModelRequestDep, NameParam, defend_endpoint, runtime_of
from service.detail import encoder
from service.schemas import ERROR_RESPONSES, IMAGE_BODY, DefendedResponse

router = APIRouter(prefix="/defended-classify", tags=["models"])


@router.post(
    "",
    response_model=DefendedResponse | list[DefendedResponse],
    responses=ERROR_RESPONSES,
    openapi_extra=IMAGE_BODY,
    response_model_exclude_unset=True,
    summary="Run a pipeline (?pipeline=, default: the manifest's) and compare with the undefended prediction",
)
async def defended_classify(
    request: Request, call: ModelRequestDep, pipeline: NameParam = None, purifier: NameParam = None
) -> DefendedResponse | list[DefendedResponse]:
    defend = defend_endpoint(call.served, pipeline, purifier)
    encode = encoder(defend.operation, call.client.detail, runtime_of(request).settings)
    _, answer = await call.answer(
        defend.preprocessing, lambda images: defend.answer(images.tensors, images.is_batch, encode)
    )
    return answer
