"""GET /samples: the bundled test images of a dataset, for the demo page and quick tries."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from service.deps import ServedDep, runtime_of
from service.errors import NotFound
from service.samples import Sample
from service.schemas import ERROR_RESPONSES, ErrorResponse, SamplesResponse
from service.schemas import Sample as SampleInfo

router = APIRouter(prefix="/samples", tags=["demo"])


async def get_samples(request: Request, served: ServedDep) -> list[Sample]:
    return runtime_of(request).samples[served.artifacts.dataset]


SamplesDep = Annotated[list[Sample], Depends(get_samples)]


@router.get(
    "", response_model=SamplesResponse, responses={422: ERROR_RESPONSES[422]}, summary="The bundled test images"
)
async def list_samples(served: ServedDep, samples: SamplesDep) -> SamplesResponse:
    dataset, names = served.artifacts.dataset, served.artifacts.manifest.class_names
    return SamplesResponse(
        dataset=dataset,
        samples=[
            SampleInfo(index=i, label=s.label, class_name=names[s.label], url=f"/samples/{i}?dataset={dataset}")
            for i, s in enumerate(samples)
        ],
    )


@router.get(
    "/{index}",
    response_class=Response,
    responses={
        200: {"content": {"image/png": {}}, "description": "the image"},
        404: {"model": ErrorResponse, "description": "no such sample"},
        422: ERROR_RESPONSES[422],
    },
    summary="One bundled test image as PNG",
)
async def sample_png(index: int, samples: SamplesDep) -> Response:
    if not 0 <= index < len(samples):
        raise NotFound(f"sample {index} does not exist; there are {len(samples)}")
    return Response(samples[index].png, media_type="image/png")
