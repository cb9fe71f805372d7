"""All routers, joined once."""

from fastapi import APIRouter

from service.routes import attack, classify, defended, demo, health, purify, samples

ROUTERS = [module.router for module in (purify, classify, defended, attack, samples, demo, health)]
api_router = APIRouter()
for router in ROUTERS:
    api_router.include_router(router)
