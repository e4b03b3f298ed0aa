"""Library functions over a lake table, evaluated outside DuckDB's UDF path.

DuckDB hands a Python UDF 2,048 rows at a time, under the GIL, and converts every BLOB argument
from its own vectors to Arrow (measured here: 90 MB/s for SDSS-sized images, against 1 GB/s for
pyarrow reading the same Parquet). For a query whose library calls read one lake table's
columns, this pass computes the calls before DuckDB sees the rows:

    SELECT avg(doppler_correct(freq_hz, observed_at, ra_deg, dec_deg, site) - freq_hz)
    FROM signal_events WHERE snr > 25

becomes a stage that reads the columns the call needs in large batches: DuckDB's own scan with
the WHERE conjuncts it can apply pushed into it (``snr > 25``), or, when a blob column is read,
pyarrow's scan (zero-copy blobs) with those conjuncts evaluated by DuckDB on each batch's small
columns. It evaluates ``doppler_correct`` on each batch (``udfs.registry.evaluate``, the same call
the UDF adapters make), two batches at a time: in threads, so kernels that release the GIL use
both cores, or for a kernel that keeps it (``holds_gil``) over a large table in worker processes
(engine/backends/worker_processes.py). The surviving rows stream to DuckDB with one column per call:

    SELECT avg(__fn0_0 - freq_hz) FROM <stage> AS signal_events

Only the columns the rest of the query reads cross into DuckDB, so a spectrogram's input
samples never do. A call is computed here when each argument is a column of the FROM table or a
literal (and at least one is a column); anything else (a join, an expression argument, a nested
library call) stays on the UDF path, which gives the same results (the tests run both ways).
"""

from __future__ import annotations

import os
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
from sqlglot import exp

from catalogs import parquet_blobs
from catalogs.lake import Snapshot
from engine.backends import worker_processes
from engine.backends.lateral_views import conjuncts
from udfs.registry import UdfSpec, evaluate, get

BATCH_ROWS = 65_536  # rows per batch for narrow rows (what Spark's Arrow UDFs get)
BATCH_BYTES = 32 << 20  # and at most about this many bytes of input per batch (blob rows)
IN_FLIGHT = max(1, min(2, os.cpu_count() or 1))  # batches evaluated at once (the cores)
PROCESSES_FROM_BYTES = 64 << 20  # a GIL-bound kernel goes to worker processes over this much data

# Node types a pushed-down WHERE conjunct may contain: deterministic, row-local, no functions
# that could differ between DuckDB evaluating it here and in the query.
_PUSHABLE = (
    exp.Column, exp.Identifier, exp.Literal, exp.Boolean, exp.Null, exp.Paren, exp.Neg, exp.Not,
    exp.And, exp.Or, exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.NullSafeEQ, exp.Is,
    exp.In, exp.Between, exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod, exp.Cast, exp.DataType,
    exp.Like, exp.ILike, exp.Tuple, exp.Abs,
)
_CONSTANT = (exp.Literal, exp.Boolean, exp.Null, exp.Neg, exp.Cast, exp.DataType, exp.Paren)


@dataclass
class Call:
    """One distinct library call: its function, its argument expressions, its output column."""

    spec: UdfSpec
    args: list[exp.Expression]
    column: str
    fields: tuple[str, ...] | None = None  # of a struct result, the only fields the query reads

    @property
    def returns(self) -> pa.DataType:
        """The column's type: the function's, or its struct with only ``fields``."""
        if self.fields is None:
            return self.spec.returns
        return pa.struct([self.spec.returns.field(name) for name in self.fields])

    def output(self, values: pa.Array) -> pa.Array:
        """The kernel's result as the column (only ``fields`` of a struct, its NULL rows kept)."""
        if self.fields is None:
            return values
        mask = values.is_null() if values.null_count else None
        return pa.StructArray.from_arrays([values.field(name) for name in self.fields], names=list(self.fields),
                                          mask=mask)


@dataclass
class Stage:
    """One SELECT's calls over one snapshot; the relation DuckDB reads in the table's place."""

    relation: str
    snapshot: Snapshot
    calls: list[Call]
    passthrough: list[str]  # the table's columns the rest of the query reads
    predicate: exp.Expression | None  # WHERE conjuncts applied to each batch (table columns only)

    @property
    def read_columns(self) -> list[str]:
        names = list(self.passthrough)
        for call in self.calls:
            names += [a.name for a in call.args if isinstance(a, exp.Column)]
        if self.predicate is not None:
            names += [c.name for c in self.predicate.find_all(exp.Column)]
        return list(dict.fromkeys(names))

    @property
    def schema(self) -> pa.Schema:
        fields = [self.snapshot.schema.field(n) for n in self.passthrough]
        return pa.schema([pa.field(f.name, f.type) for f in fields]
                         + [pa.field(c.column, c.returns) for c in self.calls])


# ---- planning ------------------------------------------------------------------------------

def plan(tree: exp.Expression, snapshots: dict[str, Snapshot], library: dict[str, UdfSpec],
         can_push=None, filter_first: bool = False
         ) -> tuple[exp.Expression, list[Stage]]:
    """``tree`` with each eligible SELECT reading a stage instead of its table, and the stages.

    ``can_push(conjunct, column types)``: whether a plain WHERE conjunct may go into the stage
    (default: every one of ``_PUSHABLE`` nodes); the others stay in the query.
    ``filter_first``: leave a SELECT alone when a WHERE conjunct without a library call would
    stay in the query: the stage would compute the calls for rows the engine itself would have
    dropped first (a partition filter it cannot push, say)."""
    stages: list[Stage] = []

    def rewrite(node):
        if isinstance(node, exp.Select):
            stage = _stage_for(node, snapshots, library, len(stages), can_push, filter_first)
            if stage is not None:
                stages.append(stage[1])
                return stage[0]
        return node

    if not any(isinstance(n, exp.Anonymous) and n.name.lower() in library for n in tree.find_all(exp.Anonymous)):
        return tree, []
    tree = tree.transform(rewrite, copy=True)
    for stage in stages:
        for call in stage.calls:
            if pa.types.is_struct(call.spec.returns):
                names = [f.name for f in call.spec.returns]
                used = _fields_read(tree, call.column)
                if used is not None and used < set(names):
                    call.fields = tuple(n for n in names if n in used)
    return tree, stages


# ---- which fields of a struct result the query reads ---------------------------------------
# A spectrogram's power is most of its bytes; a query that reads only n_time and n_chans should
# not carry it from the stage into the engine (on Spark: from the Python workers into the JVM).
# The uses are followed conservatively: a field access (x.f), or an alias in a derived table's
# select list read only through field accesses by the SELECT around it. Any other use (the whole
# struct selected, passed to a function, a star) keeps every field.

def _field_of(node: exp.Expression) -> str | None:
    """f where ``node`` is the x of a field access x.f."""
    parent = node.parent
    if isinstance(parent, exp.Dot) and parent.this is node and isinstance(parent.expression, exp.Identifier):
        return parent.expression.name
    return None


def _fields_read(tree: exp.Expression, column: str) -> set[str] | None:
    """The fields of the stage column ``column`` that ``tree`` reads; None when it may read it whole."""
    used: set[str] = set()
    for node in tree.find_all(exp.Column):
        if node.name != column:
            continue
        field = _field_of(node)
        if field is not None:
            used.add(field)
            continue
        alias = node.parent
        if not (isinstance(alias, exp.Alias) and isinstance(alias.parent, exp.Select)
                and any(e is alias for e in alias.parent.expressions)):
            return None
        through = _alias_fields(alias)
        if through is None:
            return None
        used |= through
    return used


def _alias_fields(alias: exp.Alias) -> set[str] | None:
    """The fields read of the select-list item ``alias`` of a derived table, by the SELECT that
    reads the derived table; None when it may read it whole."""
    name, select = alias.alias, alias.parent
    if not name:
        return None
    # the alias read in its own SELECT (ORDER BY, HAVING), or a column of the same name there
    if any(name in (node.name, node.table) for node in select.walk(prune=lambda n: n is alias)
           if isinstance(node, exp.Column)):
        return None
    subquery = select.parent
    if not isinstance(subquery, exp.Subquery):
        return None
    outer = subquery.parent.parent if isinstance(subquery.parent, (exp.From, exp.Join)) else None
    if not isinstance(outer, exp.Select):
        return None
    used: set[str] = set()
    for node in outer.walk(prune=lambda n: n is subquery):
        if node is subquery:
            continue
        if isinstance(node, exp.Star) and not isinstance(node.parent, exp.Count):
            return None
        if not isinstance(node, exp.Column):
            continue
        if node.table == name and node.db in ("", subquery.alias):
            used.add(node.name)  # sp.f (Spark parses it as column f of a table sp), t.sp.f
        elif node.name == name and node.table in ("", subquery.alias):
            field = _field_of(node)
            if field is None:
                return None
            used.add(field)
    return used


def _scope_of(node: exp.Expression) -> exp.Select | None:
    parent = node.parent
    while parent is not None and not isinstance(parent, exp.Select):
        parent = parent.parent
    return parent


def _stage_for(select: exp.Select, snapshots, library, index: int, can_push=None, filter_first=False):
    source = select.args.get("from_")
    if source is None or select.args.get("joins") or not isinstance(source.this, exp.Table):
        return None
    table = source.this
    snapshot = snapshots.get(table.name)
    if snapshot is None or not snapshot.files:
        return None
    alias = table.alias_or_name
    columns = {f.name: f.type for f in snapshot.schema}
    own = [n for n in select.find_all(exp.Anonymous) if n.name.lower() in library and _scope_of(n) is select]
    grouped = _is_grouped(select)
    group_keys = {g.sql(dialect="spark") for g in (select.args.get("group") or exp.Group()).expressions}
    calls: dict[str, Call] = {}
    chosen = []
    for node in own:
        spec = library[node.name.lower()]
        key = node.sql(dialect="spark")
        # in a grouped query a call outside an aggregate is a function of the group's keys: it
        # may become a column only where the GROUP BY names the same call
        if grouped and not _per_row(node, select) and key not in group_keys:
            continue
        if not _eligible(node, spec, alias, columns):
            continue
        if key not in calls:
            calls[key] = Call(spec, [a.copy() for a in node.expressions], f"__fn{index}_{len(calls)}")
        chosen.append(node)
    if not calls:
        return None
    if filter_first and select.args.get("where") is not None:
        _, kept = _split_where(select, alias, columns, can_push)
        if any(not any(isinstance(n, exp.Anonymous) and n.name.lower() in library for n in part.walk())
               for part in kept):
            return None
    if not _expand_stars(select, alias, snapshot):
        return None
    relation = f"__astrolake_stage_{index}"
    for node in chosen:
        node.replace(exp.column(calls[node.sql(dialect="spark")].column, table=alias))
    pushed, kept = _split_where(select, alias, columns, can_push)
    select.set("where", exp.Where(this=exp.and_(*kept)) if kept else None)
    select.set("from_", exp.From(this=exp.Table(this=exp.to_identifier(relation, quoted=True),
                                                alias=exp.TableAlias(this=exp.to_identifier(alias)))))
    passthrough = _columns_read(select, alias, columns)
    predicate = exp.and_(*pushed) if pushed else None
    return select, Stage(relation, snapshot, list(calls.values()), passthrough, predicate)


def _is_grouped(select: exp.Select) -> bool:
    return select.args.get("group") is not None or any(
        _scope_of(a) is select and not isinstance(a.parent, exp.Window) for a in select.find_all(exp.AggFunc))


def _per_row(node: exp.Expression, select: exp.Select) -> bool:
    """Whether ``node`` is evaluated per input row of a grouped ``select``: inside an aggregate,
    in WHERE or in a lateral view (not in the select list, HAVING or ORDER BY)."""
    child, parent = node, node.parent
    while parent is not None and parent is not select:
        if isinstance(parent, exp.AggFunc):
            return True
        child, parent = parent, parent.parent
    return isinstance(child, (exp.Where, exp.Lateral))


def _expand_stars(select: exp.Select, alias: str, snapshot: Snapshot) -> bool:
    """``*`` and ``alias.*`` in the select list as the table's columns (the stage's relation has
    the computed columns too); False where that cannot be done (a star with lateral views)."""
    stars = [e for e in select.expressions
             if isinstance(e, exp.Star) or (isinstance(e, exp.Column) and isinstance(e.this, exp.Star))]
    if not stars:
        return True
    if select.args.get("laterals") or any(isinstance(e, exp.Column) and e.table != alias for e in stars):
        return False
    for star in stars:
        columns = [exp.column(f.name, table=alias, quoted=True) for f in snapshot.schema]
        index = select.expressions.index(star)
        select.set("expressions", select.expressions[:index] + columns + select.expressions[index + 1:])
    return True


def _is_table_column(node: exp.Column, alias: str, columns: dict) -> bool:
    return node.name in columns and node.table in ("", alias) and not node.args.get("db")


def _compatible(actual: pa.DataType, declared: pa.DataType) -> bool:
    def kind(t):
        if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
            return "number"
        if pa.types.is_string(t) or pa.types.is_large_string(t):
            return "string"
        if pa.types.is_binary(t) or pa.types.is_large_binary(t):
            return "binary"
        if pa.types.is_timestamp(t):
            return "timestamp"
        return str(t)
    return kind(actual) == kind(declared)


def _eligible(node: exp.Anonymous, spec: UdfSpec, alias: str, columns: dict) -> bool:
    if len(node.expressions) != len(spec.args) or not any(isinstance(a, exp.Column) for a in node.expressions):
        return False  # a call of constants is a constant: DuckDB folds it
    for arg, declared in zip(node.expressions, spec.args):
        if isinstance(arg, exp.Column):
            if not _is_table_column(arg, alias, columns) or not _compatible(columns[arg.name], declared.type):
                return False
        elif not all(isinstance(n, _CONSTANT) for n in arg.walk()):
            return False
    return True


def _split_where(select: exp.Select, alias: str, columns: dict, can_push=None) -> tuple[list, list]:
    """The WHERE conjuncts a batch can apply (table columns and plain operators only, and what
    ``can_push`` accepts), the rest."""
    where = select.args.get("where")
    if where is None:
        return [], []
    pushed, kept = [], []
    for part in conjuncts(where.this):
        plain = all(isinstance(n, _PUSHABLE) for n in part.walk()) and all(
            _is_table_column(c, alias, columns) for c in part.find_all(exp.Column))
        if plain and can_push is not None:
            plain = can_push(part, columns)
        (pushed if plain else kept).append(part.copy() if plain else part)
    return pushed, kept


def _columns_read(select: exp.Select, alias: str, columns: dict) -> list[str]:
    """The table's columns the rewritten SELECT (and any subquery in it) reads; all on a star."""
    names = []
    for node in select.walk():
        if isinstance(node, exp.Star) and not isinstance(node.parent, exp.Count):
            parent = node.parent
            if not isinstance(parent, exp.Column) or parent.table in ("", alias):
                return list(columns)
        if isinstance(node, exp.Column) and node.name in columns and node.table in ("", alias):
            names.append(node.name)
    return list(dict.fromkeys(names))


def describe(stages: list[Stage], heading: str, scan_of) -> str:
    """The stages as ``explain`` prints them above the engine's plan; ``scan_of(stage)`` says
    how the engine reads a stage's rows."""
    lines = [f"function pre-pass ({heading}):"]
    for stage in stages:
        where = f" WHERE {stage.predicate.sql(dialect='spark')}" if stage.predicate is not None else ""
        calls = ", ".join(f"{c.column} = {c.spec.name}(...)" + (f".{{{', '.join(c.fields)}}}" if c.fields else "")
                          for c in stage.calls)
        lines.append(f"  {stage.relation}: {calls} over {stage.snapshot.table} v{stage.snapshot.version} "
                     f"({scan_of(stage)}{where}; reads {', '.join(stage.read_columns)})")
    return "\n".join(lines)


# ---- running -------------------------------------------------------------------------------

def reads_blobs(stage: Stage) -> bool:
    """Whether the stage reads a binary column (DuckDB's BLOB-to-Arrow export is the slow part)."""
    schema = stage.snapshot.schema
    return any(_is_binary(schema.field(n).type) for n in stage.read_columns)


def _is_binary(t: pa.DataType) -> bool:
    return pa.types.is_binary(t) or pa.types.is_large_binary(t)


def scan_batches(stage: Stage, keep_rows):
    """The stage's columns read row group by row group, in batches of about BATCH_BYTES:
    binary columns as views into the files' pages where their layout allows
    (``catalogs.parquet_blobs``: no bytes copied), else by pyarrow's scan; only the rows for which
    ``keep_rows(batch, predicate)`` (a boolean array over a batch of the other columns) is true,
    when the stage has a predicate."""
    for group in row_groups(stage.snapshot):
        yield from read_row_group(stage, group, keep_rows)


def _dataset_schema(snapshot: Snapshot) -> pa.Schema:
    return pa.schema([pa.field(f.name, f.type) for f in snapshot.schema])


def row_groups(snapshot: Snapshot, paths=None):
    """The snapshot's row groups (of ``paths`` only, when given) as pyarrow fragments, in order."""
    schema = _dataset_schema(snapshot)
    partitioning = None
    if snapshot.partition_by:
        partitioning = ds.partitioning(pa.schema([schema.field(p) for p in snapshot.partition_by]), flavor="hive")
    dataset = ds.dataset(list(paths or snapshot.files), schema=schema, format="parquet",
                         partitioning=partitioning, partition_base_dir=snapshot.location or None)
    for fragment in dataset.get_fragments():
        yield from fragment.split_by_row_group()


def read_row_group(stage: Stage, group: ds.ParquetFileFragment, keep_rows):
    """``scan_batches`` of one row group (a fragment of one)."""
    schema = stage.snapshot.schema
    columns = stage.read_columns
    partitions = set(stage.snapshot.partition_by)
    blobs = [n for n in columns if _is_binary(schema.field(n).type) and n not in partitions]
    others = [n for n in columns if n not in blobs]
    needed = list(dict.fromkeys(others + ([c.name for c in stage.predicate.find_all(exp.Column)]
                                          if stage.predicate is not None else [])))
    info = group.row_groups[0]
    small = None
    if needed:
        small = ds.Scanner.from_fragment(group, schema=_dataset_schema(stage.snapshot), columns=needed).to_table()
    rows = None
    if stage.predicate is not None and info.num_rows:
        # (a predicate of no column, WHERE false say, is evaluated over a placeholder column)
        tested = small.combine_chunks().to_batches()[0] if small is not None else pa.record_batch(
            [pa.nulls(info.num_rows, pa.int8())], names=["__astrolake_row"])
        keep = keep_rows(tested, stage.predicate)
        rows = np.flatnonzero(keep.fill_null(False).to_numpy(zero_copy_only=False))
    count = info.num_rows if rows is None else len(rows)
    if count == 0:
        return
    views = {}
    for name in blobs:
        views[name] = parquet_blobs.blob_column(group.path, group.metadata, info.id, name, rows)
        if views[name] is None:  # another writer's layout: pyarrow's scan of this row group
            yield from _scanned(stage, group, keep_rows)
            return
    if small is not None and rows is not None:
        small = small.take(pa.array(rows))
    arrays = [views[n] if n in views else small.column(n).combine_chunks() for n in columns]
    step = _balanced(count, batch_rows(stage))
    for start in range(0, count, step):
        yield pa.RecordBatch.from_arrays([a.slice(start, step) for a in arrays], names=columns)


def _scanned(stage: Stage, group: ds.ParquetFileFragment, keep_rows):
    """One row group read by pyarrow's scanner in batches, filtered batch by batch."""
    # little read-ahead: a few batches' memory is reused by the allocator; more is returned to the
    # system and faulted in again (on this VM that cost seconds of system time per GB)
    scanner = ds.Scanner.from_fragment(group, schema=_dataset_schema(stage.snapshot), columns=stage.read_columns,
                                       batch_size=batch_rows(stage), batch_readahead=1, fragment_readahead=1)
    for batch in scanner.to_batches():
        if stage.predicate is not None and batch.num_rows:
            batch = batch.filter(keep_rows(batch, stage.predicate), null_selection_behavior="drop")
        yield batch


def _balanced(count: int, most: int) -> int:
    """Rows per batch for ``count`` rows, at most ``most``: equal batches, as many as a multiple of
    IN_FLIGHT (64 rows at most 21 a batch: 4 of 16, not 21, 21, 21, 1, which leave a core idle)."""
    batches = -(-count // max(1, most))
    batches = -(-batches // IN_FLIGHT) * IN_FLIGHT if batches > 1 or count >= IN_FLIGHT else batches
    return max(1, -(-count // batches))


def batch_rows(stage: Stage) -> int:
    """Rows per batch: BATCH_ROWS, or fewer where the rows read are wide (about BATCH_BYTES)."""
    schema = stage.snapshot.schema
    width = sum(_mean_blob_bytes(stage.snapshot, n) if _is_binary(schema.field(n).type) else 8
                for n in stage.read_columns) or 8
    return max(1, min(BATCH_ROWS, BATCH_BYTES // width))


class StageRun:
    """A stage's rows as an Arrow stream: ``source`` batches in, one column per call added,
    ``IN_FLIGHT`` batches evaluated at once (in threads, or in worker processes for a kernel that
    holds the GIL over a large table); the first error a batch raised kept for the caller."""

    def __init__(self, stage: Stage, source, constant, in_flight: int = IN_FLIGHT):
        self.stage = stage
        self.in_flight = in_flight
        self.error: BaseException | None = None
        self._source = source
        self._constants = {id(a): constant(a, c.spec.args[i].type)
                           for c in stage.calls for i, a in enumerate(c.args) if not isinstance(a, exp.Column)}
        self._stop = threading.Event()

    def reader(self) -> pa.RecordBatchReader:
        return pa.RecordBatchReader.from_batches(self.stage.schema, self._batches())

    def close(self) -> None:
        self._stop.set()

    @property
    def in_processes(self) -> bool:
        """Whether the calls run in worker processes: a kernel that keeps the GIL, over enough data
        to repay sending it (one core otherwise, however many threads)."""
        if self.in_flight < 2 or not any(c.spec.holds_gil for c in self.stage.calls):
            return False
        return _size_bytes(self.stage.snapshot) >= PROCESSES_FROM_BYTES

    def _arguments(self, batch: pa.RecordBatch) -> list[tuple[str, list[pa.Array]]]:
        n = batch.num_rows
        return [(call.spec.name, [batch.column(a.name) if isinstance(a, exp.Column)
                                  else _repeat(self._constants[id(a)], n) for a in call.args])
                for call in self.stage.calls]

    def _assemble(self, batch: pa.RecordBatch, results: list[pa.Array]) -> pa.RecordBatch:
        schema = self.stage.schema
        arrays = [batch.column(name) for name in self.stage.passthrough] + [
            call.output(r) for call, r in zip(self.stage.calls, results)]
        arrays = [a if a.type == f.type else a.cast(f.type) for a, f in zip(arrays, schema)]  # blob views
        return pa.RecordBatch.from_arrays(arrays, schema=schema)

    def _batches(self):
        pending: deque = deque()
        if self.in_processes:
            slots = worker_processes.SharedSlots(self.in_flight + 1)
            workers = worker_processes.pool(self.in_flight)
        else:
            slots, workers = None, ThreadPoolExecutor(self.in_flight, thread_name_prefix="astrolake-stage")
        try:
            for batch in self._source(self.stage):
                if self._stop.is_set():
                    raise RuntimeError("stage closed")
                if batch.num_rows == 0:
                    continue
                pending.append((batch, self._submit(workers, slots, batch)))
                if len(pending) >= self.in_flight:
                    yield self._assemble(*self._result(pending.popleft(), slots))
            while pending:
                yield self._assemble(*self._result(pending.popleft(), slots))
        except BaseException as e:
            self._stop.set()
            for _, future in pending:
                future.cancel()
            if self.error is None:
                self.error = e
            raise
        finally:
            if slots is None:
                workers.shutdown(wait=True, cancel_futures=True)
            else:
                for _, future in pending:  # a worker may still read a slot
                    try:
                        future.result()
                    except BaseException:
                        pass
                slots.close()

    def _submit(self, workers, slots, batch: pa.RecordBatch):
        arguments = self._arguments(batch)
        if slots is None:
            return workers.submit(evaluate_calls, arguments)
        arrays, calls = [], []
        for name, args in arguments:
            calls.append((name, list(range(len(arrays), len(arrays) + len(args)))))
            arrays += args
        segment, size = slots.put(arrays)
        return workers.submit(worker_processes.evaluate_shared, segment, size, calls)

    @staticmethod
    def _result(item, slots) -> tuple[pa.RecordBatch, list[pa.Array]]:
        batch, future = item
        result = future.result()
        return batch, (result if slots is None else worker_processes.read_results(result))


def plain_literal(value: exp.Expression, arrow_type: pa.DataType) -> pa.Scalar | None:
    """A number literal for a numeric argument or a string literal for a string argument, where
    the engine's cast is exact (in range, no rounding); None for anything the engine should cast."""
    negative = isinstance(value, exp.Neg)
    literal = value.this if negative else value
    if not isinstance(literal, exp.Literal):
        return None
    if literal.is_string:
        if negative or not (pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type)):
            return None
        return pa.scalar(literal.this, arrow_type)
    text = ("-" if negative else "") + literal.this
    try:
        if pa.types.is_integer(arrow_type) and text.lstrip("-").isdigit():
            return pa.scalar(int(text)).cast(arrow_type)  # safe cast: out of range raises
        if pa.types.is_floating(arrow_type):
            number = float(text)
            scalar = pa.scalar(number, arrow_type)
            return scalar if float(scalar.as_py()) == number or pa.types.is_float64(arrow_type) else None
    except (pa.ArrowInvalid, ValueError):
        return None
    return None


def evaluate_calls(calls: list[tuple[str, list[pa.Array]]]) -> list[pa.Array]:
    """Each (function name, argument arrays) evaluated: in a thread or in a worker process."""
    return [evaluate(get(name), args) for name, args in calls]


def _size_bytes(snapshot: Snapshot) -> int:
    total = 0
    for path in snapshot.files:
        try:
            total += os.stat(path).st_size
        except OSError:
            pass
    return total


def _repeat(value: pa.Scalar, n: int) -> pa.Array:
    if not value.is_valid:
        return pa.nulls(n, value.type)
    return pa.repeat(value, n) if hasattr(pa, "repeat") else pa.array([value.as_py()] * n, value.type)


def _mean_blob_bytes(snapshot: Snapshot, column: str) -> int:
    """Bytes per value of a binary column, from the first file's Parquet metadata."""
    import pyarrow.parquet as pq

    try:
        meta = pq.ParquetFile(snapshot.files[0]).metadata
        index = meta.schema.to_arrow_schema().names.index(column)
        size = sum(meta.row_group(i).column(index).total_uncompressed_size for i in range(meta.num_row_groups))
        return max(8, size // max(1, meta.num_rows))
    except (OSError, ValueError, IndexError):
        return 1 << 20
