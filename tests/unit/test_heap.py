"""Start-up objects are frozen out of the collector's full collections, garbage is not, and
the young generation is collected less often."""

from __future__ import annotations

import gc
import weakref

from arctern.heap import YOUNG_GENERATION_THRESHOLD, settle_heap


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


def test_startup_objects_are_frozen_and_startup_garbage_is_not() -> None:
    garbage = Node()
    gone = weakref.ref(garbage)
    del garbage
    thresholds = gc.get_threshold()
    try:
        settle_heap()
        assert gone() is None  # collected before the freeze, not kept forever
        assert gc.get_freeze_count() > 0
        before = gc.get_freeze_count()
        gc.collect()
        assert gc.get_freeze_count() == before  # a collection does not thaw them
        assert gc.get_threshold() == (YOUNG_GENERATION_THRESHOLD, *thresholds[1:])
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


def test_garbage_made_after_settling_is_still_collected() -> None:
    thresholds = gc.get_threshold()
    try:
        settle_heap()
        cycles = [weakref.ref(Node()) for _ in range(3 * YOUNG_GENERATION_THRESHOLD)]
        assert sum(ref() is None for ref in cycles) > YOUNG_GENERATION_THRESHOLD
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
