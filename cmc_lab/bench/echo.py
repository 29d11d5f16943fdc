"""The loopback TCP floor of the FIX round trip: an asyncio-streams echo peer in a process of its own.

``python -m cmc_lab.bench.echo`` listens on a free loopback port, prints ``listening on
127.0.0.1:PORT`` and answers every ``request_size`` bytes it reads with ``reply_size`` bytes, on the
same asyncio streams the FIX acceptor uses. :func:`tcp_round_trip` measures that exchange from an
asyncio-streams client with the byte counts of one NewOrderSingle and its two ExecutionReports:
the part of the FIX round trip that is the kernel and the event loops, not FIX.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

from cmc_lab.bench.stats import percentiles

#: Bytes of a NewOrderSingle and of its ExecutionReports (New, then Fill) in the FIX round trip bench.
REQUEST_BYTES, REPLY_BYTES = 180, 246 + 271


async def _serve(request_size: int, reply_size: int) -> None:
    reply = b"x" * reply_size

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                await reader.readexactly(request_size)
                writer.write(reply)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    print(f"listening on 127.0.0.1:{port}", flush=True)
    async with server:
        await server.serve_forever()


def tcp_round_trip(port: int, n: int = 500) -> dict[str, Any]:
    """``n`` request/reply exchanges with the echo peer on ``port``: p50/p99/max in µs."""

    async def run() -> list[int]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        request = b"y" * REQUEST_BYTES
        times = []
        for i in range(n + max(20, n // 10)):
            t0 = time.perf_counter_ns()
            writer.write(request)
            await reader.readexactly(REPLY_BYTES)
            if i >= max(20, n // 10):  # the first exchanges warm up both ends
                times.append(time.perf_counter_ns() - t0)
        writer.close()
        return times

    loop = asyncio.new_event_loop()
    try:
        result: dict[str, Any] = percentiles(loop.run_until_complete(run()))
    finally:
        loop.close()
    result["what"] = (
        f"loopback TCP round trip, {REQUEST_BYTES} bytes out and {REPLY_BYTES} back, asyncio streams both ends"
    )
    return result


if __name__ == "__main__":
    sizes = (int(sys.argv[1]), int(sys.argv[2])) if len(sys.argv) == 3 else (REQUEST_BYTES, REPLY_BYTES)
    asyncio.run(_serve(*sizes))
