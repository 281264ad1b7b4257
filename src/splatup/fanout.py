"""Fan-out of independent jobs (the frames of a camera path, the views of an evaluation) over processes or machines
with dask.distributed, with results delivered in order.

:func:`ordered_map` runs ``fn(item, **shared)`` for every item, serially in this process when no client is given,
else as Dask tasks: the ``shared`` values (a scene) are scattered to every worker once, a failed task is retried
``retries`` times by Dask, and a job that still fails stops the run with :class:`FanoutError` naming its index.
Results are handed to ``on_result`` in item order as soon as every earlier one is in, so a video can be written
while later frames are still rendering. :func:`dask_client` starts a local cluster or joins an existing one.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from .errors import SplatupInputError


class FanoutError(RuntimeError):
    """A job failed (after its retries). ``index`` is its position in the items; ``__cause__`` the error."""

    def __init__(self, what: str, index: int, attempts: int, error: BaseException):
        super().__init__(f"{what} {index} failed after {attempts} attempt(s): {type(error).__name__}: {error}")
        self.index = index


def _threads_per_worker(workers: int) -> int:
    return max(1, (os.cpu_count() or 1) // workers)


@contextmanager
def dask_client(workers: int | None = None, scheduler: str | None = None,
                connect_timeout_s: float = 10.0) -> Iterator[Any]:
    """A ``distributed.Client``: on a new local cluster of ``workers`` processes (each running one job at a time
    with cpu_count / workers numba and torch threads), or connected to the scheduler at ``scheduler``
    ('tcp://host:8786', given up after ``connect_timeout_s``). Yields None when neither is given (serial). The
    local cluster is closed on exit; a joined cluster is left running."""
    if workers is not None and scheduler is not None:
        raise SplatupInputError("--workers and --scheduler: give one of them (a local cluster, or an existing one)")
    if workers is None and scheduler is None:
        yield None
        return
    import logging

    from distributed import Client, LocalCluster

    if scheduler is not None:
        try:
            client = Client(scheduler, timeout=f"{connect_timeout_s}s")
        except (OSError, TimeoutError, ValueError) as e:
            raise SplatupInputError(f"--scheduler: could not reach a Dask scheduler at {scheduler!r}: {e}") from e
        try:
            yield client
        finally:
            client.close()
        return
    if workers < 1:
        raise SplatupInputError(f"--workers: expected at least 1 process, got {workers}")
    t = str(_threads_per_worker(workers))
    env = {"NUMBA_NUM_THREADS": t, "OMP_NUM_THREADS": t, "MKL_NUM_THREADS": t}
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=logging.ERROR, env=env) as cluster, Client(cluster) as client:
        yield client


def ordered_map(
    fn: Callable[..., Any],
    items: Sequence[Any],
    shared: dict[str, Any] | None = None,
    client: Any = None,
    retries: int = 2,
    on_result: Callable[[int, Any], None] | None = None,
    what: str = "job",
    keep_results: bool = True,
) -> list[Any]:
    """``[fn(item, **shared) for item in items]``, serially or on a Dask ``client``, in item order.

    Args:
        fn: a module-level function (Dask pickles it by reference).
        shared: keyword arguments common to every call; on Dask they are sent to each worker once.
        retries: extra attempts Dask makes for a failed task before giving up (serial runs do not retry).
        on_result: called as on_result(index, result) in index order, each result exactly once.
        what: the name of a job in error messages ("frame", "view").
        keep_results: False drops each result once ``on_result`` has had it (long videos); the list is then Nones.

    Raises:
        SplatupInputError: a job found its input bad; the message starts with the job's name and index.
        FanoutError: a job failed otherwise; it names the job's index. Jobs not yet finished are cancelled.
    """
    shared = dict(shared or {})
    results: list[Any] = [None] * len(items)
    if client is None:
        for i, item in enumerate(items):
            try:
                r = fn(item, **shared)
            except SplatupInputError as e:
                raise SplatupInputError(f"{what} {i}: {e}") from e
            except Exception as e:
                raise FanoutError(what, i, 1, e) from e
            if on_result:
                on_result(i, r)
            if keep_results:
                results[i] = r
        return results

    from distributed import as_completed

    scattered = {k: client.scatter(v, broadcast=True) for k, v in shared.items()}
    token = secrets.token_hex(4)
    futures = [client.submit(fn, item, **scattered, key=f"splatup-{what}-{i}-{token}", retries=retries, pure=False)
               for i, item in enumerate(items)]
    index = {f.key: i for i, f in enumerate(futures)}
    done = [False] * len(items)
    next_out = 0
    try:
        for fut in as_completed(futures):
            i = index[fut.key]
            if fut.status != "finished":
                err = fut.exception()
                if isinstance(err, SplatupInputError):
                    raise SplatupInputError(f"{what} {i}: {err}") from err
                raise FanoutError(what, i, retries + 1, err) from err
            results[i] = fut.result()
            done[i] = True
            fut.release()
            while next_out < len(items) and done[next_out]:
                if on_result:
                    on_result(next_out, results[next_out])
                if not keep_results:
                    results[next_out] = None
                next_out += 1
    except BaseException:
        client.cancel(futures)
        raise
    return results
