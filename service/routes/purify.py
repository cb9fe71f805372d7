"""POST /purify: the purified image, as PNG or (``Accept: application/json``) base64 with distances."""

from typing import Annotated

from fastapi import APIRouter, Header, Response

from service.deps import ApiKey, ImagesDep, PurifierDep, ServedDep
from service.images import encode_png
from service.inference import encode_purified
from service.routes.common import answer
from service.schemas import ERROR_RESPONSES, IMAGE_BODY, PurifyResponse

router = APIRouter(prefix="/purify", tags=["models"], dependencies=[ApiKey])


@router.post(
    "",
    response_model=PurifyResponse | list[PurifyResponse],
    responses={**ERROR_RESPONSES, 200: {"content": {"image/png": {}}, "description": "the purified image"}},
    openapi_extra=IMAGE_BODY,
    summary="Purify an image with the dataset's default autoencoder (or ?purifier=autoencoder-fgsm|autoencoder-pgd)",
)
async def purify(
    served: ServedDep, purifier: PurifierDep, images: ImagesDep, accept: Annotated[str, Header()] = "image/png"
) -> Response | PurifyResponse | list[PurifyResponse]:
    operation = f"purify:{purifier}"
    if not images.is_batch and "application/json" not in accept:
        return await answer(
            served, images, operation, lambda r, ms: Response(encode_png(r.image), media_type="image/png")
        )
    model = served.artifacts.model_id(purifier)
    return await answer(served, images, operation, lambda r, ms: encode_purified(r, model, ms))
