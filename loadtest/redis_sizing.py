"""``python -m loadtest.redis_sizing``: Redis's memory per active client of the shared guard, measured.

A private redis-server; ``--clients`` clients each send ``query_history`` images through ``SharedGuard`` (a full
history, a bucket and a flag: the most a client holds), and Redis's ``used_memory`` is read before and after.
Writes ``docs/redis-sizing.json``; ``docs/deploy.md`` quotes it.
"""

import argparse
import asyncio
import json
import tempfile
from pathlib import Path

import numpy as np
import redis
import torch
from fastapi import BackgroundTasks

from loadtest.machine import machine
from loadtest.redis_server import RedisServer
from service.config import REPO_ROOT, Settings
from service.guard import Client
from service.shared_guard import SharedGuard

OUT = REPO_ROOT / "docs" / "redis-sizing.json"


async def fill(clients: int, settings: Settings) -> None:
    guard = SharedGuard(settings)
    rng = np.random.default_rng(0)
    for i in range(clients):
        images = torch.from_numpy(rng.uniform(0, 1, (settings.query_history, 1, 28, 28)).astype(np.float32))
        await guard.admit(Client(f"key:{i:016x}", "label"), list(images), BackgroundTasks())
    await guard.close()


def measure(clients: int) -> dict:
    with tempfile.TemporaryDirectory() as workdir:
        server = RedisServer(Path(workdir)).start()
        settings = Settings(client_rate=10.0, query_defense="flag", redis_url=server.url)
        try:
            client = redis.Redis(port=server.port)
            before = client.info("memory")["used_memory"]
            asyncio.run(fill(clients, settings))
            after = client.info("memory")["used_memory"]
            keys, version = client.dbsize(), client.info("server")["redis_version"]
        finally:
            server.stop()
    per_client = (after - before) / clients
    return {"clients": clients, "keys": keys, "fingerprints_per_client": settings.query_history,
            "bytes_per_client": round(per_client), "mb_per_1000_clients": round(per_client * 1000 / 1e6, 2),
            "redis_server": version, "machine": machine()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    result = measure(args.clients)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
