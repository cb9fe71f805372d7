"""The shared guard's Redis client against a real redis-server: pipelined replies reach their own callers, the
script is loaded again after a flush, errors and silence become exceptions within the timeout, not hangs."""

import asyncio
import socket
import time

import pytest
import redis

from loadtest.redis_server import RedisServer
from service.resp import RedisReplyError, RedisUnavailable, ScriptClient

ECHO = "return {ARGV[1], redis.call('INCR', KEYS[1])}"


def test_concurrent_calls_on_one_connection_each_get_their_own_reply(redis_server: RedisServer) -> None:
    async def run() -> list:
        client = ScriptClient(redis_server.url, ECHO, 2.0)
        replies = await asyncio.gather(*(client.run(["n"], [f"call-{i}"]) for i in range(200)))
        await client.close()
        return replies

    replies = asyncio.run(run())
    assert [reply[0] for reply in replies] == [f"call-{i}".encode() for i in range(200)]
    assert sorted(reply[1] for reply in replies) == list(range(1, 201))  # each ran once, atomically


def test_the_script_is_loaded_again_after_a_flush_and_a_url_names_its_database(redis_server: RedisServer) -> None:
    async def run() -> None:
        client = ScriptClient(redis_server.url.removesuffix("/0") + "/3", ECHO, 2.0)
        assert (await client.run(["n"], ["a"]))[1] == 1
        redis_server.client().script_flush()
        assert (await client.run(["n"], ["b"]))[1] == 2
        await client.close()

    asyncio.run(run())
    assert redis_server.client().get("n") is None  # database 0 untouched
    assert redis.Redis(port=redis_server.port, db=3).get("n") == b"2"


def test_a_script_error_is_raised_as_redis_answered_it(redis_server: RedisServer) -> None:
    async def run() -> None:
        client = ScriptClient(redis_server.url, "return redis.call('NOSUCHCOMMAND')", 2.0)
        with pytest.raises(RedisReplyError):
            await client.run([], [])
        await client.close()

    asyncio.run(run())


def test_silence_and_refusal_become_redis_unavailable_within_the_timeout() -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()  # accepts connections, never answers
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens here

    async def run() -> None:
        for url in (f"redis://127.0.0.1:{silent.getsockname()[1]}", f"redis://127.0.0.1:{port}"):
            client = ScriptClient(url, ECHO, 0.2)
            started = time.perf_counter()
            with pytest.raises(RedisUnavailable):
                await asyncio.gather(*(client.run(["n"], ["x"]) for _ in range(5)))
            assert time.perf_counter() - started < 1.0
            await client.close()

    asyncio.run(run())
    silent.close()
