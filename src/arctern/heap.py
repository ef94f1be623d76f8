"""The long-running processes' use of Python's cyclic garbage collector."""

from __future__ import annotations

import gc

# Tracked objects allocated (net of those freed) before a collection of the youngest
# generation; CPython's default is 700. A copy of 20,000 small files allocates enough to
# make about 120 young, 11 middle and one full collection per copy in the server: 0.05-0.07 s
# of CPU, timed with ``gc.callbacks``. The helper processes made similar numbers of
# collections. With 10,000, the server spent 0.003-0.03 s per copy in the collector and
# the helpers none, out of about 2 CPU-s per copy. Garbage cycles live a little longer: at
# most this many objects' worth.
YOUNG_GENERATION_THRESHOLD = 10_000


def settle_heap() -> None:
    """Once a long-running process has started: collect its start-up garbage, exclude
    everything still alive (modules, the application and its routes, SQLAlchemy's mappers
    and compiled statements) from later collections, and collect the young generation less
    often (``YOUNG_GENERATION_THRESHOLD``).

    A full collection walks every tracked object, and a copy of many small files allocates
    enough to trigger several: during 20,000 files the server spent 0.14-0.30 s of its
    1.8 s of CPU in them, 0.02-0.08 s once the start-up objects were frozen.
    """
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, middle, old)
