"""POST /purify: the purified image, as PNG or (``Accept: application/json``) base64 with distances."""

from collections.abc import Awaitable
from typing import Annotated

from fastapi import APIRouter, Header, Response

from service.deps import ModelRequestDep, NameParam, purify_endpoint
from service.guard import FLAG_HEADER
from service.images import encode_png
from service.payloads import Images
from service.schemas import ERROR_RESPONSES, IMAGE_BODY, PurifyResponse

router = APIRouter(prefix="/purify", tags=["models"])


@router.post(
    "",
    response_model=PurifyResponse | list[PurifyResponse],
    responses={**ERROR_RESPONSES, 200: {"content": {"image/png": {}}, "description": "the purified image"}},
    openapi_extra=IMAGE_BODY,
    summary="Purify an image with the dataset's default purifier (or ?purifier=, as listed by GET /models)",
)
async def purify(
    call: ModelRequestDep, purifier: NameParam = None, accept: Annotated[str, Header()] = "image/png"
) -> Response | PurifyResponse | list[PurifyResponse]:
    purify = purify_endpoint(call.served, purifier)

    def respond(images: Images) -> Awaitable[Response | PurifyResponse | list[PurifyResponse]]:
        if images.is_batch or "application/json" in accept:
            return purify.answer(images.tensors, images.is_batch)
        return purify.answer(images.tensors, False, lambda r, ms: Response(encode_png(r.image), media_type="image/png"))

    flagged, answer = await call.answer(purify.preprocessing, respond)
    if flagged and isinstance(answer, Response):  # the dependency's Response headers do not reach a returned one
        answer.headers.update(FLAG_HEADER)
    return answer
