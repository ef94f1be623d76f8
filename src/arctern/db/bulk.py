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
from sqlalchemy.sql import Select
from sqlalchemy.sql.dml import UpdateBase

_UNSET = object()

# A column type's bind processor (None: the value goes to the driver as it is).
Processor = Callable[[Any], Any] | None


class BulkStatement:
    """``statement`` (an INSERT or UPDATE) run for many rows at once, each row a mapping of
    the ``columns`` to set (and of any ``bindparam`` of the statement) to values."""

    def __init__(self, statement: UpdateBase, columns: Sequence[str]) -> None:
        self.statement = statement
        self.columns = list(columns)
        self._plans: dict[str, tuple[str, list[tuple[str, Processor]]] | None] = {}

    def _plan(self, dialect: Dialect) -> tuple[str, list[tuple[str, Processor]]] | None:
        """The SQL text and, in order, each parameter's name and processor; None for a
        driver with named parameters (the rows then go through SQLAlchemy as usual)."""
        if dialect.name not in self._plans:
            compiled = self.statement.compile(dialect=dialect, column_keys=self.columns)
            names = compiled.positiontup
            plan = None
            if names is not None:
                binds = compiled.binds
                order: list[tuple[str, Processor]] = []
                for name in names:
                    process = binds[name].type.dialect_impl(dialect).bind_processor(dialect)
                    order.append((name, cast(Processor, process)))
                plan = (compiled.string, order)
            self._plans[dialect.name] = plan
        return self._plans[dialect.name]

    async def run(self, session: AsyncSession, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        connection = await session.connection()
        plan = self._plan(connection.dialect)
        if plan is None:
            await session.execute(self.statement, list(rows))
            return
        sql, order = plan
        names = [name for name, _process in order]
        converted: list[tuple[int, Callable[[Any], Any]]] = [
            (index, process) for index, (_name, process) in enumerate(order) if process is not None
        ]
        # The last value each processor saw, and its result: rows of one flush mostly share
        # values (None, a state, the time the group finished), and processing one (a time's
        # conversion, a JSON dump) costs more than the rest of the row.
        last: list[tuple[Any, Any]] = [(_UNSET, None)] * len(converted)
        params: list[tuple[Any, ...]] = []
        for row in rows:
            values = [row[name] for name in names]
            for position, (index, process) in enumerate(converted):
                value = values[index]
                seen, result = last[position]
                if value is not seen:
                    result = process(value)
                    last[position] = (value, result)
                values[index] = result
            params.append(tuple(values))
        await connection.exec_driver_sql(sql, params)


class BulkQuery:
    """A SELECT of many rows, fetched as plain tuples from the driver: compiled once per
    dialect, its parameters bound and its columns read with the types' own processors (only
    for values that are not NULL), without SQLAlchemy's row objects."""

    def __init__(self, statement: Select[Any]) -> None:
        self.statement = statement
        self._plans: dict[str, _QueryPlan | None] = {}

    def _plan(self, dialect: Dialect) -> _QueryPlan | None:
        if dialect.name not in self._plans:
            compiled = self.statement.compile(dialect=dialect)
            names = compiled.positiontup
            plan = None
            if names is not None:
                binds = compiled.binds
                parameters: list[tuple[str, Any, Processor]] = []
                for name in names:
                    bind = binds[name]
                    process = bind.type.dialect_impl(dialect).bind_processor(dialect)
                    parameters.append((name, bind.value, cast(Processor, process)))
                plan = _QueryPlan(compiled.string, parameters)
            self._plans[dialect.name] = plan
        return self._plans[dialect.name]

    async def all(self, session: AsyncSession, **params: Any) -> list[tuple[Any, ...]]:
        """Every row, for ``params`` (the statement's named ``bindparam``s; its literal
        values are bound as they were given)."""
        connection = await session.connection()
        plan = self._plan(connection.dialect)
        if plan is None:
            return [tuple(row) for row in await session.execute(self.statement, params)]
        arguments = []
        for name, value, process in plan.parameters:
            given = params.get(name, value)
            arguments.append(given if process is None or given is None else process(given))
        result = await connection.exec_driver_sql(plan.sql, tuple(arguments))
        if plan.columns is None:
            # A type's reader may depend on the type code the driver reports for the column.
            codes = [entry[1] for entry in result.cursor.description]
            plan.columns = []
            for index, column in enumerate(self.statement.selected_columns):
                impl = column.type.dialect_impl(connection.dialect)
                reader = impl.result_processor(connection.dialect, codes[index])
                if reader is not None:
                    plan.columns.append((index, cast(Callable[[Any], Any], reader)))
        rows = [tuple(row) for row in result.fetchall()]
        if plan.columns:
            for position, row in enumerate(rows):
                values = list(row)
                for index, convert in plan.columns:
                    if values[index] is not None:
                        values[index] = convert(values[index])
                rows[position] = tuple(values)
        return rows


@dataclass
class _QueryPlan:
    sql: str
    parameters: list[tuple[str, Any, Processor]]  # name, literal value, bind processor
    # Result processors by column index, found at the first execution.
    columns: list[tuple[int, Callable[[Any], Any]]] | None = None
