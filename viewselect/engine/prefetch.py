"""Loading ahead of the model: views are decoded and cropped in a background thread (PIL releases the GIL)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor


class Prefetch:
    """``fn(items[i])`` computed in order by one background thread, at most ``ahead`` items ahead.

    :meth:`result` returns item ``i``'s value or re-raises its exception, exactly where a direct
    call would have. :meth:`close` (and Ctrl-C inside :meth:`result`) cancels what was not started
    and waits for the one running load.
    """

    def __init__(self, fn, items: list, ahead: int):
        self.fn, self.items, self.ahead = fn, items, ahead
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="viewselect-load")
        self.futures: dict = {}
        self.submitted = 0

    def result(self, i: int):
        try:
            while self.submitted < len(self.items) and self.submitted <= i + self.ahead:
                self.futures[self.submitted] = self.pool.submit(self.fn, self.items[self.submitted])
                self.submitted += 1
            return self.futures.pop(i).result()
        except KeyboardInterrupt:
            self.close()
            raise

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.futures.clear()
