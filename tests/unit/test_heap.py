"""Start-up objects are frozen out of the collector's full collections, garbage is not."""

from __future__ import annotations

import gc
import weakref

from arctern.heap import freeze_startup_objects


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


def test_startup_objects_are_frozen_and_startup_garbage_is_not() -> None:
    garbage = Node()
    gone = weakref.ref(garbage)
    del garbage
    try:
        freeze_startup_objects()
        assert gone() is None  # collected before the freeze, not kept forever
        assert gc.get_freeze_count() > 0
        before = gc.get_freeze_count()
        gc.collect()
        assert gc.get_freeze_count() == before  # a collection does not thaw them
    finally:
        gc.unfreeze()
