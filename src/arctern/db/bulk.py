"""Thousands of rows in one driver ``executemany``, without SQLAlchemy's per-row work.

For a statement run with many rows, SQLAlchemy builds a parameter dictionary per row and
passes every value through its column type's processor on the way; for the file rows of a
work batch (a thousand per batch, written when planned and again when copied) that was a
quarter of a busy worker's Python time. A ``BulkStatement`` compiles its statement once per
dialect, binds each row as a tuple in the compiled order with the same processors (those of
the dialect's own types, so the stored values are the ones SQLAlchemy would store), and hands
the rows to the driver as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import UpdateBase

_UNSET = object()


@dataclass(frozen=True)
class _Bound:
    """A statement compiled for one dialect with positional parameters."""

    sql: str
    names: list[str]  # the parameters, in order
    # (position, bind processor) of the parameters whose type converts values.
    processors: list[tuple[int, Callable[[Any], Any]]]


def _bind(statement: Any, dialect: Dialect, columns: Sequence[str] | None = None) -> _Bound | None:
    """``statement`` compiled for ``dialect`` (``columns``: those an INSERT or UPDATE sets);
    None for a driver with named parameters."""
    compiled = statement.compile(dialect=dialect, column_keys=columns)
    names = compiled.positiontup
    if names is None:
        return None
    binds = compiled.binds
    processors = []
    for position, name in enumerate(names):
        process = binds[name].type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            processors.append((position, cast(Callable[[Any], Any], process)))
    return _Bound(compiled.string, list(names), processors)


class BulkStatement:
    """``statement`` (an INSERT or UPDATE) run for many rows at once, each row a mapping of
    the ``columns`` to set (and of any ``bindparam`` of the statement) to values.

    ``statement`` may be a function of the dialect's name, for statements each dialect
    spells its own way (an upsert)."""

    def __init__(
        self, statement: UpdateBase | Callable[[str], UpdateBase], columns: Sequence[str]
    ) -> None:
        self.statement = statement
        self.columns = list(columns)
        self._bound: dict[str, _Bound | None] = {}

    def _statement(self, dialect: Dialect) -> UpdateBase:
        statement = self.statement
        return statement if isinstance(statement, UpdateBase) else statement(dialect.name)

    async def run(
        self, session: AsyncSession, rows: Sequence[Mapping[str, Any]] | Sequence[tuple[Any, ...]]
    ) -> None:
        """Run for ``rows``: mappings of names to values, or tuples of values in the order of
        ``columns`` (a row of tuples costs less to make than a dictionary)."""
        if not rows:
            return
        connection = await session.connection()
        dialect = connection.dialect
        if dialect.name not in self._bound:
            self._bound[dialect.name] = _bind(self._statement(dialect), dialect, self.columns)
        bound = self._bound[dialect.name]
        as_tuples = isinstance(rows[0], tuple)
        if bound is None:
            mappings: list[Any] = list(rows)
            if as_tuples:
                mappings = [dict(zip(self.columns, row, strict=True)) for row in mappings]
            await session.execute(self._statement(dialect), mappings)
            return
        columns: list[Sequence[Any]]
        if as_tuples:
            given = list(zip(*rows, strict=True))  # one tuple per column of ``columns``
            columns = [given[self.columns.index(name)] for name in bound.names]
        else:
            columns = [[row[name] for row in rows] for name in bound.names]  # type: ignore[call-overload]
        for position, process in bound.processors:
            columns[position] = _processed(columns[position], process)
        await connection.exec_driver_sql(bound.sql, list(zip(*columns, strict=True)))


def _processed(values: Sequence[Any], process: Callable[[Any], Any]) -> list[Any]:
    """``process`` applied to each of ``values``, once per run of the same object: the rows of
    one flush mostly share values (None, a state, the time a group finished), and processing
    one (a time's conversion, a JSON dump) costs more than the rest of the row. Column by
    column, so that the columns without a processor are never touched in Python."""
    out: list[Any] = []
    append = out.append
    seen: Any = _UNSET
    result: Any = None
    for value in values:
        if value is not seen:
            seen, result = value, process(value)
        append(result)
    return out
