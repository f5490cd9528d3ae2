"""The chains one worker process serves, and the calls both of its front doors (the HTTP API and
the execute stream) answer the same way."""

from __future__ import annotations

from collections.abc import Generator

from coprocessor.errors import CodeNotFound, CoprocessorError, HostUnavailable, NotReady, RequestRefused, WrongChain
from coprocessor.worker.service import Worker
from protocol.wire import BatchItem, ExecuteBatchRequest, ExecuteBatchResponse, ExecuteResponse, IndexedItem


class ServedChains:
    """One `Worker` per chain, sharing the sandbox and the TEE. A call names its chain
    (`chainId`), optional while there is only one."""

    def __init__(self, served: Worker | list[Worker]) -> None:
        self.workers = [served] if isinstance(served, Worker) else list(served)
        self.primary = self.workers[0]
        self._by_chain = {worker.chain_id: worker for worker in self.workers}

    def worker_for(self, chain_id: int | None) -> Worker:
        if chain_id is None and len(self.workers) == 1:
            return self.primary
        if chain_id in self._by_chain:
            return self._by_chain[chain_id]
        wanted = "name one (chainId)" if chain_id is None else f"not {chain_id}"
        raise WrongChain(f"this worker serves chains {sorted(self._by_chain)}: {wanted}")

    def execute_batch(self, body: ExecuteBatchRequest) -> ExecuteBatchResponse:
        """Each request of the batch answered as alone: its result, or why not (as a status)."""
        answers = self.worker_for(body.chain_id).execute_batch(body.requests)
        return ExecuteBatchResponse(results=[_item(answer) for answer in answers])

    def execute_each(self, body: ExecuteBatchRequest, heartbeat_s: float) -> Generator[list[IndexedItem], None, None]:
        """The batch's answers as they are ready (`Worker.execute_each`), as batch items."""
        for part in self.worker_for(body.chain_id).execute_each(body.requests, heartbeat_s):
            yield [IndexedItem(index=index, item=_item(answer)) for index, answer in part]


def _item(answer: ExecuteResponse | CoprocessorError) -> BatchItem:
    if isinstance(answer, CoprocessorError):
        return BatchItem(status_code=status_of(answer), error=str(answer))
    return BatchItem(result=answer)


def status_of(err: CoprocessorError) -> int:
    """The HTTP status of a refusal; an error that is none of these is the worker's own fault."""
    if isinstance(err, RequestRefused):
        return 409
    if isinstance(err, NotReady | HostUnavailable):
        return 503
    if isinstance(err, CodeNotFound):
        # Infrastructure, not the agent's fault: the bridge retries on another worker.
        return 502
    if isinstance(err, WrongChain):
        # 421 Misdirected Request: a bridge set up with the wrong worker; another may serve it.
        return 421
    raise err
