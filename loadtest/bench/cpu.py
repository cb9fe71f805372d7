"""Where the CPU went during a measurement window: the client, the server (with its workers), everyone else."""

import time
from collections.abc import Awaitable

import psutil


def _busy_seconds() -> float:
    times = psutil.cpu_times()
    return times.user + times.nice + times.system + getattr(times, "irq", 0.0) + getattr(times, "softirq", 0.0)


class CpuMeter:
    """Awaited around a window; returns cores used (CPU seconds per wall second) by each party."""

    def __init__(self, server_pid: int) -> None:
        self._server = psutil.Process(server_pid)

    def _server_seconds(self) -> tuple[float, float]:
        """CPU seconds of the server's processes, and of their main threads alone (a Python server's event loop)."""
        total = main = 0.0
        for process in [self._server, *self._server.children(recursive=True)]:
            try:
                times = process.cpu_times()
                main += next((t.user_time + t.system_time for t in process.threads() if t.id == process.pid), 0.0)
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system
        return total, main

    async def __call__(self, window: Awaitable[None]) -> dict[str, float]:
        wall, client, busy = time.perf_counter(), time.process_time(), _busy_seconds()
        server, main = self._server_seconds()
        await window
        wall = time.perf_counter() - wall
        client = (time.process_time() - client) / wall
        server_after, main_after = self._server_seconds()
        server, main = (server_after - server) / wall, (main_after - main) / wall
        machine = (_busy_seconds() - busy) / wall
        return {
            "client_cores": round(client, 3),
            "server_cores": round(server, 3),
            "server_main_thread_cores": round(main, 3),
            "machine_busy_cores": round(machine, 3),
            "other_cores": round(max(machine - client - server, 0.0), 3),
        }
