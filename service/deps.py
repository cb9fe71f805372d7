"""Typed dependency aliases: the runtime, the served dataset, the endpoint a request names, the client (its API
key), and the images, admitted by the client's budget and the query-attack detector.

The model routes take one flat dependency (``ModelRequestDep``) that declares the dataset and key parameters
itself and resolves the rest with plain calls: FastAPI solves each dependency, and re-validates its parameters,
on every request, even where the result is cached. The checks keep their order: the API key, the dataset, the
model or pipeline (the route's own parameters), then the body and the client's budget.
"""

import asyncio
import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, TypeVar

from fastapi import Depends, Header, Query, Request, Response

from service.manifest import NAME
from service.config import Dataset, key_id
from service.errors import InvalidParameters, NotReady, Unauthorized, UnknownDataset, UnknownPipeline, UnknownPurifier
from service.guard import FLAG_HEADER, Client
from service.images import Preprocessing
from service.payloads import Images, read_images
from service.state import Endpoint, Runtime, Served

NameQuery = Query(pattern=f"^{NAME.pattern}$")
Answer = TypeVar("Answer")


def runtime_of(request: Request) -> Runtime:
    """The app's runtime; a plain call, not a dependency: each sub-dependency costs FastAPI a solve per request."""
    return request.app.state.runtime


DatasetQuery = Annotated[Dataset | None, Query()]
NameParam = Annotated[str | None, NameQuery]
KeyHeader = Annotated[str | None, Header()]


def served_for(request: Request, dataset: Dataset | None) -> Served:
    runtime = runtime_of(request)
    name = dataset or runtime.settings.default_dataset
    if not runtime.served:
        raise NotReady("artifacts are not loaded yet")
    if name not in runtime.served:
        raise UnknownDataset(f"dataset {name!r} is not served; choose one of {sorted(runtime.served)}")
    return runtime.served[name]


async def get_served(request: Request, dataset: DatasetQuery = None) -> Served:
    return served_for(request, dataset)


ServedDep = Annotated[Served, Depends(get_served)]


def _purifier(served: Served, name: str | None) -> str:
    name = name or served.artifacts.manifest.default_purifier
    if name not in served.purify:
        raise UnknownPurifier(f"purifier {name!r} is not served; choose one of {sorted(served.purify)}")
    return name


def purify_endpoint(served: Served, purifier: str | None) -> Endpoint:
    """The requested purifier (``autoencoder-fgsm``, ``autoencoder-pgd``, ...), else the manifest's default."""
    return served.purify[_purifier(served, purifier)]


def defend_endpoint(served: Served, pipeline: str | None, purifier: str | None) -> Endpoint:
    """The requested pipeline, else the one of ``?purifier=`` before the manifest's classifier, else the default."""
    manifest = served.artifacts.manifest
    if pipeline is not None and purifier is not None:
        raise InvalidParameters("give pipeline or purifier, not both")
    if purifier is not None:
        name = manifest.pipeline_for_purifier(_purifier(served, purifier))
        return served.compose[purifier] if name is None else served.defend[name]
    name = pipeline or manifest.default_pipeline
    if name not in served.defend:
        raise UnknownPipeline(f"pipeline {name!r} is not served; choose one of {sorted(served.defend)}")
    return served.defend[name]


def client_for(request: Request, x_api_key: str | None, authorization: str | None) -> Client:
    """With keys configured, accept ``X-API-Key`` or ``Authorization: Bearer`` (compared in constant time) and
    name the client by its key; without, by its address."""
    settings = runtime_of(request).settings
    if not settings.api_keys:
        return Client(f"addr:{request.client.host if request.client else 'unknown'}", settings.default_detail)
    given = x_api_key or (authorization or "").removeprefix("Bearer ").strip()
    matches = [hmac.compare_digest(given.encode(), key.get_secret_value().encode()) for key in settings.api_keys]
    if not given or not any(matches):
        raise Unauthorized("missing or wrong API key")
    name = key_id(given)
    return Client(f"key:{name}", settings.detail_for(name))


@dataclass(frozen=True)
class Queries:
    """Images within the client's budget, who sent them, and whether the detector has flagged that client."""

    images: Images
    client: Client
    flagged: bool


@dataclass(frozen=True)
class ModelRequest:
    """A model route's request, its API key and dataset checked; ``answer`` (or ``admit``) then reads, admits
    and answers its images.
    The route picks its model or pipeline in between, so an unknown name is refused before the body is read."""

    request: Request
    response: Response
    client: Client
    served: Served

    async def admit(self, prep: Preprocessing) -> Queries:
        """The body's images, decoded to [0,1] tensors by ``prep`` (the endpoint's ``Endpoint.preprocessing``),
        once the guard admits them, before anything runs on them: for work that costs more than a model pass."""
        flagged, images = await self.answer(prep, as_they_are, beside=False)
        return Queries(images, self.client, flagged)

    async def answer(
        self, prep: Preprocessing, respond: Callable[[Images], Awaitable[Answer]], beside: bool = True
    ) -> tuple[bool, Answer]:
        """Whether the client is flagged, and ``respond``'s answer to the images (decoded by ``prep``) once the
        guard admits them: within the client's budget, and seen by the query-attack detector. Admitted first,
        or, where ``beside`` and the guard allow (``beside_model``), side by side with ``respond``, whose answer
        is then dropped if the guard refuses. Either way no answer leaves unadmitted."""
        runtime = runtime_of(self.request)
        images = await read_images(self.request, runtime.settings, prep)
        if not (beside and runtime.guard.beside_model(len(images.tensors))):
            flagged = await runtime.guard.admit(self.client, images.tensors)
            answer = await respond(images)
        else:
            answering = asyncio.ensure_future(respond(images))
            try:
                flagged = await runtime.guard.admit(self.client, images.tensors)
            except BaseException:
                answering.cancel()
                answering.add_done_callback(dropped)
                raise
            answer = await answering
        if flagged:
            self.response.headers.update(FLAG_HEADER)
        return flagged, answer


async def as_they_are(images: Images) -> Images:
    return images


def dropped(answering: asyncio.Future) -> None:
    """Retrieve a refused request's outcome, so that a model error nobody will see is not logged as lost."""
    if not answering.cancelled():
        answering.exception()


async def model_request(
    request: Request,
    response: Response,
    dataset: DatasetQuery = None,
    x_api_key: KeyHeader = None,
    authorization: KeyHeader = None,
) -> ModelRequest:
    client = client_for(request, x_api_key, authorization)
    return ModelRequest(request, response, client, served_for(request, dataset))


ModelRequestDep = Annotated[ModelRequest, Depends(model_request)]
