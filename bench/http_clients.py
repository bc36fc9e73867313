"""Which Python HTTP client to poll with: GET + JSON of N distinct status URLs from nginx, per client.

    .venv/bin/python bench/http_clients.py [--requests 10000] [--runs 2]

Side by side in one process, interleaved per run, against the same nginx far end (``bench/common.py``):
``requests.Session`` on 16 threads (the bare loop of ``poll_throughput.py``), a urllib3
``HTTPConnectionPool`` on 16 threads, ``http.client`` with one kept-alive connection per thread on 16
threads (no pool at all), aiohttp with 16 and with 64 requests in flight, and the product's own
``MediaIntelligenceClient`` with 16 and with 64 slots (libcurl's multi interface on a uvloop thread,
``app/upstream/curl_transport.py``; it also signs every request and classifies every answer). Prints
requests/s per client and run, and the medians. It sized the choice of the poller's HTTP path
(urllib3 first, then aiohttp on uvloop, libcurl now).
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import urllib3

from bench.common import machine, median, nginx_far_end, on_threads, status_urls
from bench.poll_throughput import BARE_THREADS, run_aiohttp, run_bare


def run_urllib3(urls: list[str], threads: int = BARE_THREADS) -> float:
    """One urllib3 pool shared by ``threads`` threads; requests/s."""
    port = urlsplit(urls[0]).port
    pool = urllib3.HTTPConnectionPool("127.0.0.1", port, maxsize=threads, retries=False)

    def work(part: list[str]) -> None:
        for path in part:
            json.loads(pool.request("GET", path, timeout=urllib3.Timeout(3.05, 10)).data)

    return on_threads([urlsplit(u).path for u in urls], work, threads)


def run_http_client(urls: list[str], threads: int = BARE_THREADS) -> float:
    """``http.client``: one kept-alive connection per thread; requests/s."""
    port = urlsplit(urls[0]).port

    def work(part: list[str]) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        for path in part:
            connection.request("GET", path)
            json.loads(connection.getresponse().read())
        connection.close()

    return on_threads([urlsplit(u).path for u in urls], work, threads)


def run_product_client(urls: list[str], slots: int = BARE_THREADS) -> float:
    """``app.upstream.client.MediaIntelligenceClient``: signed, classified, ``slots`` in flight."""
    import asyncio
    import time

    from app.upstream.client import MediaIntelligenceClient
    from app.vocabulary import ApiGeneration

    base = urls[0].split("/api/", 1)[0]
    asset_ids = [url.rsplit("/", 2)[1] for url in urls]

    async def poll_all(client: MediaIntelligenceClient) -> None:
        async def one(asset_id: str) -> None:
            async with client.slots:
                result = await client.fetch_status(
                    "bench", "1", asset_id, ApiGeneration.VIDEO_ASSETS
                )
            if result.status != "ANALYZING":
                raise RuntimeError(f"product client: unexpected {result}")

        await asyncio.gather(*(one(asset_id) for asset_id in asset_ids))

    with MediaIntelligenceClient(base, "ak", "sk", concurrency=slots) as client:
        client.submit(poll_all(client)).result()  # warm up: connections, loop thread
        started = time.perf_counter()
        client.submit(poll_all(client)).result()
        return len(urls) / (time.perf_counter() - started)


CLIENTS = {
    "requests": run_bare,
    "urllib3": run_urllib3,
    "http.client": run_http_client,
    "aiohttp-16": lambda urls: run_aiohttp(urls, in_flight=BARE_THREADS),
    "aiohttp-64": run_aiohttp,
    "mi-bridge-16": run_product_client,
    "mi-bridge-64": lambda urls: run_product_client(urls, slots=64),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    results: dict[str, list[float]] = {name: [] for name in CLIENTS}
    with nginx_far_end() as base:
        urls = status_urls(base, args.requests)
        for run in range(1, args.runs + 1):
            for name, client in CLIENTS.items():
                results[name].append(client(urls))
                print(f"run {run} {name:<12} {results[name][-1]:7.0f} requests/s", flush=True)
    print("\nmedians (requests/s):")
    for name, values in results.items():
        ratio = median(values) / median(results["requests"])
        print(f"  {name:<12} {median(values):7.0f}   ({ratio:.1f}x requests)")


if __name__ == "__main__":
    main()
