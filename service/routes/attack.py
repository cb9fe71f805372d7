"""POST /attack: an FGSM or PGD adversarial image against the dataset's classifier, as PNG or JSON."""

import time
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response

from service.attacking import Attacks, AttackSpec, encode_attacked
from service.deps import ModelRequestDep, runtime_of
from service.errors import Forbidden, NotReady, UnknownPipeline
from service.guard import FLAG_HEADER
from service.images import encode_png
from service.schemas import ERROR_RESPONSES, IMAGE_BODY, AttackQuery, AttackResponse

router = APIRouter(prefix="/attack", tags=["models"])


async def get_attacks(request: Request) -> Attacks:
    attacks = runtime_of(request).attacks
    if attacks is None:
        raise NotReady("the attack models are not loaded yet")
    return attacks


AttacksDep = Annotated[Attacks, Depends(get_attacks)]


@router.post(
    "",
    response_model=AttackResponse | list[AttackResponse],
    responses={
        **ERROR_RESPONSES,
        200: {"content": {"image/png": {}}, "description": "the adversarial image; X-Linf and X-L2 headers"},
        503: {**ERROR_RESPONSES[503], "description": "max_concurrent_attacks attacks already running"},
    },
    openapi_extra=IMAGE_BODY,
    summary="Attack the classifier, or a whole pipeline with EOT (FGSM or PGD, ℓ∞), at the model's input size",
)
async def attack(
    call: ModelRequestDep,
    attacks: AttacksDep,
    query: Annotated[AttackQuery, Query()],
    accept: Annotated[str, Header()] = "image/png",
) -> Response | AttackResponse | list[AttackResponse]:
    if call.client.detail != "full":  # white-box adversarial examples reveal more than any score
        raise Forbidden("/attack needs full response detail; this client has " + repr(call.client.detail))
    served = call.served
    spec = AttackSpec(query.attack, query.eps, query.alpha, query.steps)
    manifest = served.artifacts.manifest
    pipeline = (query.pipeline or manifest.default_pipeline) if query.target == "pipeline" else None
    if pipeline is not None and pipeline not in manifest.pipelines:
        raise UnknownPipeline(f"pipeline {pipeline!r} is not served; choose one of {sorted(manifest.pipelines)}")
    target_endpoint = served.classify if pipeline is None else served.defend[pipeline]
    queries = await call.admit(target_endpoint.preprocessing)  # decoded as the endpoint of its target decodes
    images = queries.images
    started = time.perf_counter()
    model = attacks.models[served.artifacts.dataset]
    results = await attacks.pool.run(model, images.tensors, spec, query.label, pipeline, query.eot)
    latency_ms = (time.perf_counter() - started) * 1000
    if not images.is_batch and "application/json" not in accept:
        first = results[0]
        headers = {"X-Linf": f"{first.linf:.6f}", "X-L2": f"{first.l2:.6f}"} | (FLAG_HEADER if queries.flagged else {})
        return Response(encode_png(first.image), media_type="image/png", headers=headers)
    classifier = manifest.classifier if pipeline is None else manifest.pipeline_models(pipeline)[1]
    model_id = served.artifacts.model_id(classifier)
    target = pipeline or "classifier"
    out = [encode_attacked(r, spec, manifest.class_names, model_id, latency_ms, target) for r in results]
    return out if images.is_batch else out[0]
