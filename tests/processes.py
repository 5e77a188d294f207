"""Waiting for the worker processes of a multi-process test (torch.distributed over gloo)."""

from __future__ import annotations


def join_all(procs) -> list[int]:
    """Wait for every process, however long a busy machine makes them take; their exit codes.

    No fixed timeout (a slow run is not a failure). What a timeout guarded against: a process that
    died leaves its peers blocked in a collective forever, so once one has failed the others are
    terminated rather than waited for.
    """
    while any(p.is_alive() for p in procs):
        for p in procs:
            p.join(1.0)
        if any(p.exitcode not in (None, 0) for p in procs):
            for p in procs:
                if p.is_alive():
                    p.terminate()
            for p in procs:
                p.join()
    return [p.exitcode for p in procs]
