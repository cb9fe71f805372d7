"""Operations: liveness, readiness and the served models."""

from fastapi import APIRouter, Request

from service.deps import runtime_of
from service.errors import NotReady
from service.schemas import DatasetInfo, ErrorResponse, ModelsResponse, PipelineInfo, Status

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=Status, summary="Liveness")
async def healthz() -> Status:
    return Status(status="ok")


@router.get("/readyz", response_model=Status, responses={503: {"model": ErrorResponse, "description": "not ready"}}, summary="Readiness")
async def readyz(request: Request) -> Status:
    if not runtime_of(request).ready:
        raise NotReady("artifacts are not loaded, verified and warmed up yet")
    return Status(status="ready")


@router.get("/models", response_model=ModelsResponse, summary="Served models: metrics, sha256, device")
async def models(request: Request) -> ModelsResponse:
    datasets = {}
    for name, served in runtime_of(request).served.items():
        manifest = served.artifacts.manifest
        pipelines = {}
        for pipeline, entry in manifest.pipelines.items():
            purifier, classifier = manifest.pipeline_models(pipeline)
            certificate = manifest.certificate(pipeline)
            pipelines[pipeline] = PipelineInfo(
                purifier=purifier,
                classifier=classifier,
                input_shape=manifest.pipeline_input_shape(pipeline),
                description=entry.model_extra.get("description"),
                method=entry.model_extra.get("method"),
                certificate=None if certificate is None else certificate.model_dump(),
                metrics=entry.model_extra.get("metrics", {}),
            )
        datasets[name] = DatasetInfo(
            device=str(served.artifacts.device),
            classifier=manifest.classifier,
            classifiers=sorted(served.artifacts.classifiers),
            default_purifier=manifest.default_purifier,
            purifiers=sorted(served.artifacts.purifiers),
            default_pipeline=manifest.default_pipeline,
            pipelines=pipelines,
            class_names=manifest.class_names,
            input_shape=manifest.input_shape,
            detector_thresholds=served.model.thresholds,
            sha256=served.artifacts.sha256,
            metrics=manifest.metrics,
        )
    return ModelsResponse(datasets=datasets)
