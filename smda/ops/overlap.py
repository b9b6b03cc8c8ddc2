"""Publishing a day while the next one steps: :class:`PublishAhead`, for a one-process backfill.

Publishing day D (COGs, quick-look, STAC item) does not feed day D+1, whose step needs only
D's committed state, so :func:`smda.ops.days.backfill_days` hands each day's publish to one
background thread and steps the next day meanwhile (GDAL and rasterio release the GIL). The
guarantees of the serial loop are kept:

- the state chain is committed by the caller, in order, in its own thread;
- at most one publish is in flight (bounded memory): :meth:`PublishAhead.submit` and
  :meth:`PublishAhead.drain` first wait for the one before, so days are published in order and
  nothing else touches the products while one is being written;
- each day's result reaches ``done`` (the progress callback) in order, in the caller's thread;
- a failed publish raises its own error from the next :meth:`~PublishAhead.drain`, which the
  caller calls before committing the next day: the chain ends where the serial loop would have
  stopped, and a re-run publishes the committed day again;
- leaving the block (an error in a step, Ctrl-C) waits for the publish in flight, so every
  file is either written whole or not at all (writes are atomic), and reports it first: a
  failed publish is the error the serial loop would have raised before stepping on.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType

__all__ = ["PublishAhead"]


class PublishAhead[T]:
    """One publish in flight, on one background thread; results delivered in order to ``done``.

    Use as a context manager; :meth:`submit` a publish (a callable returning the day's result),
    :meth:`drain` before anything that must see the products complete (committing the next
    day, unpublishing, publishing in the caller's thread).
    """

    def __init__(self, done: Callable[[T], None]) -> None:
        self._done = done
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="publish-ahead")
        self._pending: Future[T] | None = None

    def submit(self, publish: Callable[[], T]) -> None:
        """Start ``publish`` in the background, after the one in flight is finished."""
        self.drain()
        self._pending = self._pool.submit(publish)

    def drain(self) -> None:
        """Wait for the publish in flight and deliver its result to ``done``.

        Raises
        ------
        Exception
            Whatever the publish raised (it is not delivered).
        """
        pending, self._pending = self._pending, None
        if pending is not None:
            self._done(pending.result())

    def __enter__(self) -> PublishAhead[T]:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._pending is not None:
                if exc is None:
                    self.drain()
                else:  # the publish before the failure is reported (and its error wins)
                    try:
                        self.drain()
                    except Exception as failed:
                        raise failed from exc
        finally:
            self._pool.shutdown(wait=True)
