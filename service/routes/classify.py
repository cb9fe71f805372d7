"""POST /classify: the manifest's classifier on the image as given."""

from fastapi import APIRouter, Request

from service.deps import ModelRequestDep, runtime_of
from service.detail import encoder
from service.schemas import ERROR_RESPONSES, IMAGE_BODY, ClassifyResponse

router = APIRouter(prefix="/classify", tags=["models"])


@router.post(
    "",
    response_model=ClassifyResponse | list[ClassifyResponse],
    responses=ERROR_RESPONSES,
    openapi_extra=IMAGE_BODY,
    response_model_exclude_unset=True,
    summary="Classify an image (or a JSON batch) without defence",
)
async def classify(request: Request, call: ModelRequestDep) -> ClassifyResponse | list[ClassifyResponse]:
    classify = call.served.classify
    encode = encoder(classify.operation, call.client.detail, runtime_of(request).settings)
    _, answer = await call.answer(
        classify.preprocessing, lambda images: classify.answer(images.tensors, images.is_batch, encode)
    )
    return answer
