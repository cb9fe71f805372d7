"""All routers, joined once."""

from fastapi import APIRouter

from service.routes import classify, defended, health, purify

api_router = APIRouter()
for module in (purify, classify, defended, health):
    api_router.include_router(module.router)
