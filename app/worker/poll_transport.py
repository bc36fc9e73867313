"""Where a tick's status requests run: ``BRIDGE_POLL_TRANSPORT``.

``thread`` (the default): on the worker client's event-loop thread, in the worker's own process.
The requests and the tick's database work then share one interpreter lock: one process polls at
most what one core can both send and store.

``process``: in a child process of the worker (``app.worker.poll_process``), which sends the
requests while the worker's process claims and stores, each on a core of its own. For a worker that
must poll thousands of assets a second on a machine with two cores or more (measured in
``docs/performance.md``, section 1). The tick does not tell the two apart: either way a batch goes
out with ``submit`` and every claim comes back once through ``report``.
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import TYPE_CHECKING, Protocol

from app.worker.asset_claims import ClaimedAsset
from app.worker.poll_requests import BatchTiming, Halt, Report, poll_batch

if TYPE_CHECKING:
    from app.worker.runtime import WorkerRuntime

#: ``BRIDGE_POLL_TRANSPORT``'s values.
THREAD, PROCESS = "thread", "process"


class PollTransport(Protocol):
    """Sends a tick's batches of status requests."""

    def submit(
        self, claims: list[ClaimedAsset], timing: BatchTiming, halt: Halt, report: Report
    ) -> Future[None]:
        """Poll ``claims`` (``app.worker.poll_requests.poll_batch``'s rules): ``report`` is called
        exactly once per claim, from another thread, with its chain or None (not polled); the future
        ends once every claim has reported. ``halt`` stops the requests not yet sent."""
        ...

    def start(self) -> None:
        """Be ready to send (the first ``submit`` would start it anyway): a worker calls it when it
        starts, so its first tick does not wait for a process to start."""
        ...

    def close(self) -> None:
        """Stop sending; what still runs ends, and its claims not yet reported come back unpolled."""
        ...


class ThreadTransport:
    """The requests on the event-loop thread of the worker's own client (``runtime.client``)."""

    def __init__(self, runtime: WorkerRuntime) -> None:
        self._runtime = runtime

    def submit(
        self, claims: list[ClaimedAsset], timing: BatchTiming, halt: Halt, report: Report
    ) -> Future[None]:
        # The client is read now, once: the batch's coroutine runs on that client's loop.
        client = self._runtime.client
        return client.submit(poll_batch(self._runtime, client, claims, timing, halt, report))

    def start(self) -> None:
        """Nothing to start: the client's loop starts with its first batch, in no time."""

    def close(self) -> None:
        """Nothing of its own: the runtime closes its client."""


def transport_of(runtime: WorkerRuntime) -> PollTransport:
    """``runtime``'s transport, made on first use as its settings say (the runtime closes it)."""
    if runtime.poll_transport is None:
        if runtime.settings.bridge_poll_transport == PROCESS:
            from app.worker.poll_process import ProcessTransport

            runtime.poll_transport = ProcessTransport.for_runtime(runtime)
        else:
            runtime.poll_transport = ThreadTransport(runtime)
    return runtime.poll_transport
