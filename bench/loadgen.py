"""A constant-rate (open-loop) HTTP/1.1 load generator for `POST /v1/checkins`, in its own process.

`python -m bench.loadgen --port P --rate R --duration S --connections C --tokens F --stations F`

Request i is due at t0 + i/R whatever happened before it; its latency runs from when it was
due (not when a connection became free), so a stalled server shows up in the percentiles
instead of slowing the generator down (no coordinated omission). Raw keep-alive sockets keep
the generator's own cost small on a machine it shares with the server. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from pathlib import Path

from bench.stats import percentile


def _request(port: int, token: str, station: str, action: str) -> bytes:
    body = json.dumps(
        {"station_token": station, "action": action, "client_event_id": str(uuid.uuid4())}
    ).encode()
    head = (
        f"POST /v1/checkins HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    return head + body


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    if length:
        await reader.readexactly(length)
    return status


async def run(
    port: int,
    rate: float,
    duration: float,
    connections: int,
    tokens: list[str],
    stations: list[str],
    grace_s: float = 30.0,
) -> dict[str, object]:
    total = int(rate * duration)
    # Built before the clock starts: the generator's own work stays out of the timed part.
    reqs = [
        _request(port, tokens[i % len(tokens)], stations[i % len(stations)], ("in", "out")[i % 2])
        for i in range(total)
    ]
    queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors = 0

    async def conn() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while True:
                item = await queue.get()
                if item is None:
                    return
                due, req = item
                try:
                    writer.write(req)
                    status = await asyncio.wait_for(_read_response(reader), 30)
                except (OSError, asyncio.IncompleteReadError, TimeoutError):
                    errors += 1
                    writer.close()
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                    continue
                latencies.append(time.monotonic() - due)
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            writer.close()

    tasks = [asyncio.create_task(conn()) for _ in range(connections)]
    await asyncio.sleep(0.2)
    t0 = time.monotonic()
    for i, req in enumerate(reqs):
        due = t0 + i / rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait((due, req))
    for _ in tasks:
        queue.put_nowait(None)
    # A server far behind the rate would take minutes to drain the queue: give it `grace_s`,
    # then stop. Requests not answered by then count with the time they had waited (a lower
    # bound of their latency), so the percentiles never flatter an overloaded server.
    _, pending = await asyncio.wait(tasks, timeout=duration + grace_s)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    end = time.monotonic()
    elapsed = end - t0
    ok = sum(n for s, n in statuses.items() if 200 <= s < 300)
    unfinished = total - len(latencies) - errors
    ms = [x * 1000 for x in latencies]
    if unfinished > 0:
        # The last `unfinished` requests are the ones still queued or in flight.
        ms += [(end - (t0 + i / rate)) * 1000 for i in range(total - unfinished, total)]
    return {
        "target_rate": rate,
        "sent": total,
        "ok": ok,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "errors": errors,
        "unfinished": max(0, unfinished),
        "elapsed_s": elapsed,
        "achieved_rate": ok / elapsed if elapsed else 0.0,
        "p50_ms": percentile(ms, 50),
        "p99_ms": percentile(ms, 99),
        "max_ms": max(ms) if ms else float("nan"),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--rate", type=float, required=True)
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--tokens", type=Path, required=True)
    ap.add_argument("--stations", type=Path, required=True)
    a = ap.parse_args(argv)
    tokens = a.tokens.read_text().split()
    stations = a.stations.read_text().split()
    out = asyncio.run(run(a.port, a.rate, a.duration, a.connections, tokens, stations))
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
