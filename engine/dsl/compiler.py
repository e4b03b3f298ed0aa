"""Sky AST -> sqlglot expression: the same kind of tree engine/sqlfront.py makes from Spark SQL,
so ``Session.execute(tree)`` runs it on either engine and it can always be shown as Spark SQL.

Identifiers and literals become tree nodes (never spliced text), so no input can inject SQL.
Clauses run in the order written (a pipeline): near, during and where filter, a stage adds
columns, match joins; select, group by, having, order by, limit and into shape the result.
A step that needs the columns an earlier stage computed reads that stage as a subquery, so
filters written before any stage stay in the SELECT that reads the lake table, where
``rewrites.bounds`` sees them (the cone's declination band skips files).
"""

from __future__ import annotations

import datetime as dt
import inspect
import math
from dataclasses import dataclass, field
from functools import lru_cache

import pyarrow as pa
from sqlglot import exp
from sqlglot.dialects.spark import Spark

from engine.dsl import ast, units
from engine.dsl.catalog import SkyCatalogError, StaticCatalog, column_units
from engine.dsl.names import UnknownTarget
from engine.dsl.parser import parse
from engine.errors import SkyCompileError, did_you_mean

_FUNCTIONS = Spark.parser_class.FUNCTIONS
UNIT_OF_FUNCTION = {"distance": "deg", "doppler_correct": "Hz", "barycentric_velocity_ms": "m/s"}
KEEP_UNIT = {"abs", "min", "max", "avg", "mean", "sum", "first", "last", "round", "floor", "ceil",
             "median", "percentile_approx", "stddev", "std", "coalesce", "any_value"}
MJD_EPOCH = dt.datetime(1858, 11, 17, tzinfo=dt.timezone.utc)
EPSILON_DEG = 1e-9  # widens the declination band so rounding never drops a row inside the cone


def compile_sky(text: str, params: dict | None = None, catalog=None) -> exp.Expression:
    """The sqlglot tree of a Sky query (a query, CREATE TABLE AS or INSERT INTO)."""
    query = parse(text)
    return Compiler(text, params or {}, catalog or StaticCatalog()).query(query)


@dataclass
class Typed:
    """A compiled expression with what the compiler knows of its unit."""
    node: exp.Expression
    unit: str | None = None       # astropy unit text, or None (no unit / unknown)
    bare: bool = False            # a plain number literal
    implicit: str | None = None   # the short name it was written as (freq for freq_hz)
    physical: bool = False        # unit is known for sure (a column's or a quantity's)
    name: str | None = None       # a column name for the output
    written: str | None = None    # how a quantity was written (for messages)


@dataclass
class Frame:
    select: exp.Select
    columns: dict                  # output column -> unit text or None
    types: dict = field(default_factory=dict)   # output column -> arrow type, when known
    computed: bool = False         # has projections beyond *
    table: str | None = None       # the lake table the frame reads directly
    conditions: list = field(default_factory=list)  # the AND-ed conjuncts of its WHERE


class Compiler:
    def __init__(self, text: str, params: dict, catalog):
        self.text, self.params, self.catalog = text, dict(params), catalog
        self._subqueries = 0
        self._select_aliases: dict[str, Typed] = {}

    def fail(self, node, message: str):
        raise SkyCompileError(message, getattr(node, "line", 0) or None, getattr(node, "column", 0) or 1, self.text)

    # ---- the query ---------------------------------------------------------------------------

    def query(self, q: ast.Query) -> exp.Expression:
        for name, value in q.defaults.items():
            self.params.setdefault(name, value)
        frame = self.source(q.source)
        for step in q.steps:
            frame = getattr(self, "step_" + type(step).__name__.lower())(frame, step)
        tree = self.shape(frame, q)
        if q.into is None:
            return tree
        target = exp.Table(this=exp.to_identifier(q.into.table))
        if q.into.mode == "append":
            return exp.Insert(this=target, expression=tree)
        return exp.Create(this=target, kind="TABLE", expression=tree, replace=q.into.mode == "replace")

    def source(self, source: ast.Source) -> Frame:
        try:
            schema = self.catalog.schema(source.table)
        except SkyCatalogError as e:
            self.fail(source, str(e))
        table = exp.Table(this=exp.to_identifier(source.table))
        if source.alias:
            table.set("alias", exp.TableAlias(this=exp.to_identifier(source.alias)))
        select = exp.Select(expressions=[exp.Star()]).from_(table, copy=False)
        return Frame(select, column_units(schema), {f.name: f.type for f in schema}, table=source.table)

    def wrap(self, frame: Frame) -> Frame:
        """A new frame reading ``frame`` as a subquery."""
        self._subqueries += 1
        sub = exp.Subquery(this=frame.select, alias=exp.TableAlias(this=exp.to_identifier(f"_s{self._subqueries}")))
        select = exp.Select(expressions=[exp.Star()]).from_(sub, copy=False)
        return Frame(select, dict(frame.columns), dict(frame.types))

    def filterable(self, frame: Frame) -> Frame:
        return self.wrap(frame) if frame.computed else frame

    def add_condition(self, frame: Frame, condition: exp.Expression) -> None:
        """AND ``condition`` into the frame's WHERE as flat conjuncts (what ``rewrites.bounds`` reads)."""
        frame.conditions.extend(_conjuncts(condition))
        where = frame.conditions[0]
        for part in frame.conditions[1:]:
            where = exp.And(this=where, expression=part)
        frame.select.set("where", exp.Where(this=where))

    # ---- steps ---------------------------------------------------------------------------------

    def step_where(self, frame: Frame, step: ast.Where) -> Frame:
        frame = self.filterable(frame)
        self.add_condition(frame, self.boolean(frame, step.condition))
        return frame

    def step_near(self, frame: Frame, step: ast.Near) -> Frame:
        frame = self.filterable(frame)
        ra_col, dec_col = self.sky_columns(frame, step)
        radius = self.angle_deg(step.radius, "the radius of near")
        if radius < 0:
            self.fail(step.radius, "the radius of a cone must not be negative")
        if step.name is not None:
            name = self.param_value(step.name) if isinstance(step.name, ast.Param) else step.name.value
            try:
                ra0, dec0, _ = self.catalog.resolver.resolve(str(name))
            except UnknownTarget as e:
                self.fail(step.name, str(e))
        else:
            ra0 = self.angle_deg(step.ra, "the right ascension of near", bare_ok=True)
            dec0 = self.angle_deg(step.dec, "the declination of near", bare_ok=True)
            if not -90 <= dec0 <= 90:
                self.fail(step.dec, f"declination {dec0:g} deg is outside [-90, 90]")
        low, high = max(-90.0, dec0 - radius - EPSILON_DEG), min(90.0, dec0 + radius + EPSILON_DEG)
        band = exp.Between(this=exp.column(dec_col), low=_num(low), high=_num(high))
        cone = _call("in_cone", exp.column(ra_col), exp.column(dec_col), _num(ra0), _num(dec0), _num(radius))
        self.add_condition(frame, band)
        self.add_condition(frame, cone)
        return frame

    def step_during(self, frame: Frame, step: ast.During) -> Frame:
        frame = self.filterable(frame)
        time_col = next((c for c in ("observed_at", "start_at") if c in frame.columns), None)
        if time_col is None:
            stamps = [c for c, t in frame.types.items() if pa.types.is_timestamp(t)]
            if len(stamps) != 1:
                self.fail(step, "during needs a time column (observed_at or start_at); this table has "
                          + (", ".join(stamps) if stamps else "none"))
            time_col = stamps[0]
        start, end = self.instant(step.start, single=step.end is None)
        if step.end is not None:
            end_instant = step.end
            if step.start.kind == "mjd" and end_instant.kind in ("year", "number"):
                end_instant = ast.Instant("mjd", end_instant.value, line=end_instant.line, column=end_instant.column)
            end = self.instant(end_instant, single=False)[0]
        if end <= start:
            self.fail(step, f"the time window is empty: {_iso(start)} .. {_iso(end)} (the end is not after the start)")
        column = exp.column(time_col)
        self.add_condition(frame, exp.GTE(this=column, expression=_timestamp(start)))
        self.add_condition(frame, exp.LT(this=column.copy(), expression=_timestamp(end)))
        date_col = self.catalog.time_partition(frame.table, time_col) if frame.table else None
        if date_col and date_col in frame.columns:
            last = (end - dt.timedelta(microseconds=1)).date()
            self.add_condition(frame, exp.Between(this=exp.column(date_col), low=_date(start.date()), high=_date(last)))
        return frame

    def instant(self, instant: ast.Instant, single: bool) -> tuple[dt.datetime, dt.datetime]:
        """(start, end of the instant's precision) in UTC."""
        kind, value = instant.kind, instant.value
        if kind == "param":
            value = str(self.param_value(ast.Param(value, line=instant.line, column=instant.column)))
            kind = "mjd" if value.lower().startswith("mjd") else "text"
            value = value[3:].strip() if kind == "mjd" else value
        if kind == "number":
            self.fail(instant, f"'{value}' is not a time: a number here is an MJD after 'mjd' (mjd {value})")
        try:
            if kind == "year":
                year = int(value)
                start = dt.datetime(year, 1, 1, tzinfo=dt.timezone.utc)
                return start, dt.datetime(year + 1, 1, 1, tzinfo=dt.timezone.utc)
            if kind == "mjd":
                mjd = float(value)
                start = MJD_EPOCH + dt.timedelta(days=mjd)
                return start, (MJD_EPOCH + dt.timedelta(days=math.floor(mjd) + 1)) if single else start
            text = value.strip().replace(" ", "T", 1).rstrip("Z")
            if len(text) == 4 and text.isdigit():
                return self.instant(ast.Instant("year", text), single)
            moment = dt.datetime.fromisoformat(text)
        except (ValueError, OverflowError):
            self.fail(instant, f"'{instant.value}' is not a time: write 2017-02-01, 2017-02-01T12:30:00, "
                      "a year (2017) or mjd 57800.5")
        moment = moment.replace(tzinfo=dt.timezone.utc) if moment.tzinfo is None else moment.astimezone(dt.timezone.utc)
        if "T" not in text:
            return moment, moment + dt.timedelta(days=1)
        if single:
            self.fail(instant, "a single time is a moment, not a window: give a range (start .. end) or a date")
        return moment, moment

    def step_stage(self, frame: Frame, stage: ast.Stage) -> Frame:
        if stage.name == "correct doppler":
            need = ["freq_hz", "observed_at", "ra_deg", "dec_deg", "site"]
            self.require(frame, stage, need, "correct doppler")
            if frame.computed and "freq_bary_hz" in frame.columns:
                frame = self.wrap(frame)
            call = _call("doppler_correct", *[exp.column(c) for c in need])
            frame.select.select(exp.alias_(call, "freq_bary_hz"), copy=False)
            frame.columns["freq_bary_hz"], frame.types["freq_bary_hz"] = "Hz", pa.float64()
            frame.computed = True
            return frame
        if stage.name == "extract sources":
            return self.extract_sources(frame, stage)
        if stage.name == "spectrogram":
            return self.spectrogram(frame, stage)
        from engine.dsl import seti_stages

        stages = {"search drift": seti_stages.search_drift, "classify": seti_stages.classify,
                  "cadence": seti_stages.cadence}
        if stage.name not in stages:
            self.fail(stage, f"unknown stage '{stage.name}'")
        return stages[stage.name](self, frame, stage)

    def extract_sources(self, frame: Frame, stage: ast.Stage) -> Frame:
        self.require(frame, stage, ["pixels", "width", "height"], "extract sources")
        thresh = self.number_arg(stage.args.get("thresh"), 1.5, stage)
        if thresh <= 0:
            self.fail(stage, "thresh (in units of the background RMS) must be positive")
        frame = self.wrap(frame) if frame.computed else frame
        from udfs.registry import get as get_udf

        fields = [f.name for f in get_udf("sep_extract").returns.value_type]
        keep = [c for c, t in frame.types.items()
                if c not in ("pixels", "wcs_header") and not pa.types.is_binary(t) and c not in fields]
        lateral = exp.Lateral(
            this=exp.Explode(this=_call("sep_extract", *[exp.column(c) for c in ("pixels", "width", "height")], _num(thresh))),
            view=True, alias=exp.TableAlias(this=exp.to_identifier("_t"), columns=[exp.to_identifier("_src")]))
        projections = [exp.column(c) for c in keep]
        projections += [exp.alias_(exp.Dot(this=exp.column("_src"), expression=exp.to_identifier(f)), f) for f in fields]
        has_wcs = "wcs_header" in frame.columns
        if has_wcs:
            sky = _call("pix_to_sky", exp.column("wcs_header"),
                        *[exp.Dot(this=exp.column("_src"), expression=exp.to_identifier(f)) for f in ("x_pix", "y_pix")])
            projections.append(exp.alias_(sky, "_sky"))
        inner = frame.select
        inner.set("expressions", projections)
        inner.set("laterals", [lateral])
        units_of = {"x_pix": "pix", "y_pix": "pix", "a_pix": "pix", "b_pix": "pix", "theta_rad": "rad"}
        columns = {c: frame.columns.get(c) for c in keep} | {f: units_of.get(f) for f in fields}
        types = {c: frame.types.get(c) for c in keep} | {f: pa.float64() for f in fields}
        result = Frame(inner, columns, types)
        if not has_wcs:
            return self.wrap(result)
        wrapped = self.wrap(result)
        outer = [exp.column(c) for c in columns]
        outer += [exp.alias_(exp.Dot(this=exp.column("_sky"), expression=exp.to_identifier(f)), f) for f in ("ra_deg", "dec_deg")]
        wrapped.select.set("expressions", outer)
        wrapped.columns = {c: u for c, u in columns.items()} | {"ra_deg": "deg", "dec_deg": "deg"}
        wrapped.types = dict(types) | {"ra_deg": pa.float64(), "dec_deg": pa.float64()}
        return self.wrap(wrapped)

    def spectrogram(self, frame: Frame, stage: ast.Stage) -> Frame:
        self.require(frame, stage, ["samples", "sample_rate_hz"], "spectrogram")
        fft = self.number_arg(stage.args.get("fft"), None, stage)
        integrate = self.number_arg(stage.args.get("integrate"), 1, stage)
        if fft != int(fft) or integrate != int(integrate) or fft <= 0 or integrate <= 0:
            self.fail(stage, "fft and integrate must be positive whole numbers")
        fft, integrate = int(fft), int(integrate)
        frame = self.wrap(frame) if frame.computed else frame
        frame.select.select(exp.alias_(_call("spectrogram", exp.column("samples"), _num(fft), _num(integrate)), "_sg"), copy=False)
        outer = self.wrap(frame)
        keep = [c for c in frame.columns if c not in ("samples", "n_samples", "sample_rate_hz", "center_freq_hz", "observed_at")]
        rate = exp.column("sample_rate_hz")
        projections = [exp.column(c) for c in keep]
        if "observed_at" in frame.columns:
            projections.append(exp.alias_(exp.column("observed_at"), "start_at"))
        projections += [
            exp.alias_(exp.Div(this=_num(fft * integrate), expression=rate.copy()), "tsamp_s"),
            exp.alias_(exp.Div(this=rate.copy(), expression=_num(fft)), "foff_hz"),
        ]
        if "center_freq_hz" in frame.columns:
            projections.append(exp.alias_(exp.Sub(this=exp.column("center_freq_hz"),
                                                  expression=exp.Div(this=rate.copy(), expression=_num(2))), "fch1_hz"))
        projections += [exp.alias_(exp.Dot(this=exp.column("_sg"), expression=exp.to_identifier(f)), f)
                        for f in ("power", "n_time", "n_chans")]
        outer.select.set("expressions", projections)
        columns = {c: frame.columns[c] for c in keep}
        columns |= {"start_at": None, "tsamp_s": "s", "foff_hz": "Hz", "fch1_hz": "Hz", "power": None, "n_time": None, "n_chans": None}
        types = {c: frame.types.get(c) for c in keep} | {"start_at": pa.timestamp("us", tz="UTC"), "power": pa.binary()}
        result = Frame(outer.select, columns, types)
        return self.wrap(result)

    def step_match(self, frame: Frame, step: ast.Match) -> Frame:
        try:
            schema = self.catalog.schema(step.table)
        except SkyCatalogError as e:
            self.fail(step, str(e))
        radius = self.angle_deg(step.radius, "the radius of match")
        left_ra, left_dec = self.sky_columns(frame, step)
        right_units = column_units(schema)
        if "ra_deg" not in schema.names or "dec_deg" not in schema.names:
            self.fail(step, f"match needs ra_deg and dec_deg in '{step.table}'")
        prefix = step.alias or step.table
        self._subqueries += 1
        left_alias, right_alias = f"_l{self._subqueries}", f"_r{self._subqueries}"
        left = exp.Subquery(this=frame.select, alias=exp.TableAlias(this=exp.to_identifier(left_alias)))
        right = exp.Table(this=exp.to_identifier(step.table), alias=exp.TableAlias(this=exp.to_identifier(right_alias)))
        lcol = lambda c: exp.column(c, table=left_alias)  # noqa: E731
        rcol = lambda c: exp.column(c, table=right_alias)  # noqa: E731
        dec_low = exp.Sub(this=lcol(left_dec), expression=_num(radius + EPSILON_DEG))
        dec_high = exp.Add(this=lcol(left_dec), expression=_num(radius + EPSILON_DEG))
        on = exp.and_(exp.Between(this=rcol("dec_deg"), low=dec_low, high=dec_high),
                      _call("in_cone", rcol("ra_deg"), rcol("dec_deg"), lcol(left_ra), lcol(left_dec), _num(radius)))
        separation = exp.Mul(this=_call("distance", lcol(left_ra), lcol(left_dec), rcol("ra_deg"), rcol("dec_deg")),
                             expression=_num(3600))
        projections = [exp.Column(this=exp.Star(), table=exp.to_identifier(left_alias))]
        columns, types = dict(frame.columns), dict(frame.types)
        for f in schema:
            name = f"{prefix}_{f.name}"
            projections.append(exp.alias_(rcol(f.name), name))
            columns[name], types[name] = right_units.get(f.name), f.type
        projections.append(exp.alias_(separation, "sep_arcsec"))
        columns["sep_arcsec"], types["sep_arcsec"] = "arcsec", pa.float64()
        joined = exp.Select(expressions=projections).from_(left, copy=False).join(
            right, on=on, join_type="inner", copy=False)
        result = self.wrap(Frame(joined, columns, types))
        if step.mode == "all":
            return result
        keys = [c for c in frame.columns if c.endswith("_id")] or [
            c for c, t in frame.types.items() if not (pa.types.is_binary(t) or pa.types.is_list(t) or pa.types.is_struct(t))]
        window = exp.Window(this=exp.RowNumber(), partition_by=[exp.column(c) for c in keys],
                            order=exp.Order(expressions=[exp.Ordered(this=exp.column("sep_arcsec"))]))
        result.select.select(exp.alias_(window, "_match_rank"), copy=False)
        ranked = self.wrap(result)
        self.add_condition(ranked, exp.EQ(this=exp.column("_match_rank"), expression=_num(1)))
        ranked.select.set("expressions", [exp.column(c) for c in columns])
        return self.wrap(ranked)

    # ---- shape ---------------------------------------------------------------------------------

    def shape(self, frame: Frame, q: ast.Query) -> exp.Expression:
        aggregate = q.group is not None or any(self._has_aggregate(i.expr) for i in (q.select or []))
        if frame.computed and (q.select or q.group or q.having):
            frame = self.wrap(frame)
        select = frame.select
        items = q.select
        if items is None and q.group is not None:
            items = [ast.SelectItem(g, line=g.line, column=g.column) for g in q.group]
            items.append(ast.SelectItem(ast.Call("count", [], line=q.line, column=q.column), alias="n"))
        outputs = []
        if items is not None:
            seen = set()
            for i, item in enumerate(items):
                node, name = self.select_item(frame, item, i)
                if name in seen:
                    self.fail(item, f"two output columns are named '{name}': name one with 'as'")
                seen.add(name)
                outputs.append(exp.alias_(node, name) if not (isinstance(node, exp.Column) and node.name == name) else node)
            select.set("expressions", outputs)
        if q.group is not None:
            groups = [self.expr(frame, g, allow_aliases=True).node for g in q.group]
            select.group_by(*groups, copy=False)
        if q.having is not None:
            if not aggregate:
                self.fail(q.having, "having filters groups: it needs group by or an aggregate in select")
            select.having(self.boolean(frame, q.having, allow_aliases=True), copy=False)
        if q.order:
            ordered = []
            for item in q.order:
                if isinstance(item.expr, ast.ColumnRef) and item.expr.name in self._select_aliases:
                    node = exp.column(item.expr.name)
                else:
                    node = self.expr(frame, item.expr, allow_aliases=True).node
                ordered.append(exp.Ordered(this=node, desc=item.descending, nulls_first=not item.descending))
            select.order_by(*ordered, copy=False)
        if q.limit is not None:
            value = self.number_arg(q.limit, None, q.limit)
            if value != int(value) or value < 0:
                self.fail(q.limit, "limit needs a whole number of rows")
            select.limit(int(value), copy=False)
        return select

    def select_item(self, frame: Frame, item: ast.SelectItem, index: int) -> tuple[exp.Expression, str]:
        typed = self.expr(frame, item.expr)
        node, name = typed.node, item.alias or typed.name or f"value_{index + 1}"
        if item.unit is not None:
            if typed.unit is None:
                what = typed.name or "this expression"
                self.fail(item, f"cannot show {what} in {item.unit}: it has no unit"
                          if typed.physical or typed.name else f"cannot show this expression in {item.unit}: its unit is not known")
            try:
                f = units.factor(typed.unit, item.unit)
            except units.UnitProblem as e:
                self.fail(item, f"cannot show {typed.name or 'this expression'} in {item.unit}: {e}")
            if f != 1.0:
                inverse = 1.0 / f
                node = exp.Div(this=_paren(node), expression=_num(round(inverse))) if abs(inverse - round(inverse)) < 1e-9 * inverse \
                    else exp.Mul(this=_paren(node), expression=_num(f))
            base = units.split_name(typed.name)[0] if typed.name else f"value_{index + 1}"
            name = item.alias or f"{base}_{units.suffix(item.unit)}"
            typed = Typed(node, item.unit, physical=True, name=name)
        self._select_aliases[name] = Typed(node, typed.unit, physical=typed.physical, name=name)
        return node, name

    def _has_aggregate(self, node) -> bool:
        if isinstance(node, ast.Call) and node.name.lower() in AGGREGATES:
            return True
        return any(self._has_aggregate(v) for v in vars(node).values() if isinstance(v, ast.Node)) or any(
            self._has_aggregate(x) for v in vars(node).values() if isinstance(v, list) for x in v if isinstance(x, ast.Node))

    # ---- expressions -----------------------------------------------------------------------------

    def boolean(self, frame, node, allow_aliases=False) -> exp.Expression:
        typed = self.expr(frame, node, allow_aliases)
        if typed.bare or isinstance(typed.node, exp.Literal) and typed.node.is_string:
            self.fail(node, "a condition is needed here (e.g. snr > 10), not a value")
        return typed.node

    def expr(self, frame: Frame, node, allow_aliases=False) -> Typed:
        method = getattr(self, "x_" + type(node).__name__.lower(), None)
        if method is None:  # pragma: no cover - every AST expression has a method
            self.fail(node, f"cannot use {type(node).__name__} here")
        return method(frame, node, allow_aliases)

    def x_number(self, frame, node: ast.Number, aa) -> Typed:
        try:
            value = float(node.text)
        except ValueError:
            self.fail(node, f"'{node.text}' is not a number")
        if not math.isfinite(value):
            self.fail(node, f"'{node.text}' is too large")
        return Typed(exp.Literal.number(node.text), bare=True)

    def x_quantity(self, frame, node: ast.Quantity, aa) -> Typed:
        value = self.quantity_value(node)
        unit = self.unit_text(node)
        target = units.canonical(unit)
        written = f"{node.value.text if isinstance(node.value, ast.Number) else value:} {unit}"
        return Typed(_num(units.convert(value, unit, target)), target, physical=True, written=written)

    def x_string(self, frame, node: ast.String, aa) -> Typed:
        return Typed(exp.Literal.string(node.value))

    def x_datetime(self, frame, node: ast.DateTime, aa) -> Typed:
        start, _ = self.instant(ast.Instant("datetime", node.text, line=node.line, column=node.column), single=False)
        return Typed(_timestamp(start))

    def x_boolean(self, frame, node: ast.Boolean, aa) -> Typed:
        return Typed(exp.Boolean(this=node.value))

    def x_param(self, frame, node: ast.Param, aa) -> Typed:
        value = self.param_value(node)
        if isinstance(value, bool):
            return Typed(exp.Boolean(this=value))
        if isinstance(value, (int, float)) or _is_number(value):
            text = str(value)
            if not math.isfinite(float(text)):
                self.fail(node, f"${node.name} is not a finite number")
            return Typed(exp.Literal.number(text), bare=True)
        return Typed(exp.Literal.string(str(value)))

    def x_columnref(self, frame, node: ast.ColumnRef, allow_aliases) -> Typed:
        if allow_aliases and node.name in self._select_aliases and node.name not in frame.columns:
            alias = self._select_aliases[node.name]
            return Typed(alias.node.copy(), alias.unit, physical=alias.physical, name=node.name)
        name = self.resolve_column(frame, node)
        unit = frame.columns[name]
        return Typed(exp.column(name), unit, implicit=node.name if name != node.name else None, physical=True, name=name)

    def resolve_column(self, frame: Frame, node: ast.ColumnRef) -> str:
        if node.name in frame.columns:
            return node.name
        lowered = {c.lower(): c for c in frame.columns}
        if node.name.lower() in lowered:
            return lowered[node.name.lower()]
        candidates = [c for c in frame.columns if units.split_name(c)[1] and units.split_name(c)[0].lower() == node.name.lower()]
        if len(candidates) == 1:
            return candidates[0]
        if len(candidates) > 1:
            self.fail(node, f"'{node.name}' could be {' or '.join(candidates)}: write the full name")
        names = list(frame.columns) + [units.split_name(c)[0] for c in frame.columns]
        self.fail(node, f"unknown column '{node.name}'{did_you_mean(node.name, names)}")

    def x_field(self, frame, node: ast.Field, aa) -> Typed:
        struct = self.resolve_column(frame, ast.ColumnRef(node.struct, line=node.line, column=node.column))
        return Typed(exp.Dot(this=exp.column(struct), expression=exp.to_identifier(node.name)), name=node.name)

    def x_unary(self, frame, node: ast.Unary, aa) -> Typed:
        operand = self.expr(frame, node.operand, aa)
        if node.op == "not":
            return Typed(exp.Not(this=_paren(operand.node)))
        return Typed(exp.Neg(this=_paren(operand.node)), operand.unit, operand.bare, operand.implicit, operand.physical)

    def x_binary(self, frame, node: ast.Binary, aa) -> Typed:
        if node.op in ("and", "or"):
            left, right = self.boolean(frame, node.left, aa), self.boolean(frame, node.right, aa)
            cls = exp.And if node.op == "and" else exp.Or
            return Typed(cls(this=_paren_logic(left), expression=_paren_logic(right)))
        left, right = self.expr(frame, node.left, aa), self.expr(frame, node.right, aa)
        if node.op in COMPARISONS:
            left, right = self.compatible(node, left, right)
            return Typed(COMPARISONS[node.op](this=left.node, expression=right.node))
        if node.op in ("+", "-"):
            left, right = self.compatible(node, left, right)
            cls = exp.Add if node.op == "+" else exp.Sub
            unit = left.unit or right.unit
            return Typed(cls(this=_paren(left.node), expression=_paren(right.node)), unit,
                         left.bare and right.bare, physical=left.physical or right.physical)
        cls = {"*": exp.Mul, "/": exp.Div, "%": exp.Mod}[node.op]
        unit = None
        if node.op != "%" and left.unit and right.unit and not left.bare and not right.bare:
            try:
                combined = units.parse_unit(left.unit) * units.parse_unit(right.unit) if node.op == "*" \
                    else units.parse_unit(left.unit) / units.parse_unit(right.unit)
                unit = combined.to_string() if not combined.physical_type == "dimensionless" else None
            except (ValueError, units.UnitProblem):
                unit = None
        return Typed(cls(this=_paren(left.node), expression=_paren(right.node)), unit, left.bare and right.bare)

    def compatible(self, node, left: Typed, right: Typed) -> tuple[Typed, Typed]:
        """Both sides in one unit: a quantity converts to the unit of what it meets; a bare number
        next to a column named without its unit is a missing unit."""
        for a, b in ((left, right), (right, left)):
            if b.bare and a.implicit and a.unit:
                self.fail(node, f"missing unit: '{a.implicit}' is {a.name}, {units.kind(a.unit)} in {a.unit}; "
                          f"write the unit (e.g. {b.node.sql()} {_example_unit(a.unit)}) or name the column {a.name}")
        if left.physical and right.physical and (left.unit or right.unit):
            if not left.unit or not right.unit:
                unitless, other = (left, right) if not left.unit else (right, left)
                self.fail(node, f"{_describe(unitless)} has no unit but {_describe(other)} is {units.kind(other.unit)}")
            if left.unit != right.unit:
                try:
                    f = units.factor(right.unit, left.unit)
                except units.UnitProblem:
                    self.fail(node, f"cannot compare {_describe(left)} ({units.kind(left.unit)} in {left.unit}) with "
                              f"{_describe(right)} ({units.kind(right.unit)})")
                right = self.rescale(right, left.unit, f)
        return left, right

    def rescale(self, typed: Typed, unit: str, f: float) -> Typed:
        if isinstance(typed.node, exp.Literal) or isinstance(typed.node, exp.Neg) and isinstance(typed.node.this, exp.Literal):
            value = float(typed.node.this.this if isinstance(typed.node, exp.Neg) else typed.node.this)
            value = -value if isinstance(typed.node, exp.Neg) else value
            return Typed(_num(units.convert(value, typed.unit, unit)), unit, physical=True)
        return Typed(exp.Mul(this=_paren(typed.node), expression=_num(f)), unit, physical=True)

    def x_between(self, frame, node: ast.Between, aa) -> Typed:
        operand = self.expr(frame, node.operand, aa)
        _, low = self.compatible(node, operand, self.expr(frame, node.low, aa))
        _, high = self.compatible(node, operand, self.expr(frame, node.high, aa))
        tree = exp.Between(this=operand.node, low=low.node, high=high.node)
        return Typed(exp.Not(this=tree) if node.negated else tree)

    def x_isnull(self, frame, node: ast.IsNull, aa) -> Typed:
        tree = exp.Is(this=self.expr(frame, node.operand, aa).node, expression=exp.Null())
        return Typed(exp.Not(this=tree) if node.negated else tree)

    def x_inlist(self, frame, node: ast.InList, aa) -> Typed:
        operand = self.expr(frame, node.operand, aa)
        items = [self.compatible(node, operand, self.expr(frame, i, aa))[1].node for i in node.items]
        tree = exp.In(this=operand.node, expressions=items)
        return Typed(exp.Not(this=tree) if node.negated else tree)

    def x_like(self, frame, node: ast.Like, aa) -> Typed:
        return Typed(exp.Like(this=self.expr(frame, node.operand, aa).node, expression=exp.Literal.string(node.pattern)))

    def x_call(self, frame, node: ast.Call, aa) -> Typed:
        name = node.name.lower()
        if name == "count" and not node.args:
            return Typed(exp.Count(this=exp.Star()), name="count")
        args = [self.expr(frame, a, aa) for a in node.args]
        nodes = [a.node for a in args]
        tree = self.function(node, name, nodes)
        unit = UNIT_OF_FUNCTION.get(name)
        if unit is None and name in KEEP_UNIT and args:
            unit = args[0].unit
        label = "_".join([name] + [a.name for a in args if a.name])
        return Typed(tree, unit, physical=unit is not None, name=label if len(label) <= 60 else None)

    def function(self, node: ast.Call, name: str, args: list) -> exp.Expression:
        builder = _FUNCTIONS.get(name.upper())
        if builder is None:
            library = _library()
            if name in library:
                return exp.Anonymous(this=name, expressions=args)
            self.fail(node, f"unknown function '{node.name}'{did_you_mean(name, list(library) + [k.lower() for k in _FUNCTIONS])}")
        try:
            wants_dialect = _wants_dialect(builder)
            tree = builder(args, dialect=Spark()) if wants_dialect else builder(args)
        except Exception as e:  # noqa: BLE001 - sqlglot's builders raise many kinds for bad arity
            self.fail(node, f"{node.name}() cannot take {len(args)} argument(s): {e}")
        problems = tree.error_messages(args) if isinstance(tree, exp.Expression) else ["not a function"]
        if problems:
            self.fail(node, f"{node.name}() with {len(args)} argument(s): {problems[0]}")
        return tree

    # ---- values known at compile time ----------------------------------------------------------

    def param_value(self, node: ast.Param):
        if node.name not in self.params:
            bound = ", ".join(f"${p}" for p in self.params) or "none"
            self.fail(node, f"parameter ${node.name} is not bound (give --param {node.name}=VALUE; bound: {bound})")
        return self.params[node.name]

    def number_arg(self, node, default, where) -> float:
        if node is None:
            if default is None:
                self.fail(where, "a number is needed here")
            return default
        value = self.param_value(node) if isinstance(node, ast.Param) else node.text
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(node, f"'{value}' is not a number")
        if not math.isfinite(number):
            self.fail(node, f"'{value}' is not a finite number")
        return number

    def unit_text(self, node: ast.Quantity) -> str:
        if not units.known(node.unit):
            self.fail(node, f"unknown unit '{node.unit}'")
        return node.unit

    def quantity_value(self, node: ast.Quantity) -> float:
        return self.number_arg(node.value, None, node)

    def angle_deg(self, node, what: str, bare_ok: bool = False) -> float:
        """A constant angle in degrees (a quantity, or with ``bare_ok`` a plain number of degrees)."""
        negate = False
        while isinstance(node, ast.Unary) and node.op == "-":
            negate, node = not negate, node.operand
        if isinstance(node, ast.Quantity):
            value, unit = self.quantity_value(node), self.unit_text(node)
            try:
                value = units.convert(value, unit, "deg")
            except units.UnitProblem:
                self.fail(node, f"{what} must be an angle (deg, arcmin, arcsec, mas), not {units.kind(unit)} ({unit})")
        elif bare_ok and isinstance(node, (ast.Number, ast.Param)):
            value = self.number_arg(node, None, node)
        else:
            self.fail(node, f"{what} must be a constant angle, e.g. 5 arcmin" + (" or a number of degrees" if bare_ok else ""))
        return -value if negate else value

    def sky_columns(self, frame: Frame, node) -> tuple[str, str]:
        for ra, dec in (("ra_deg", "dec_deg"), ("ra_center_deg", "dec_center_deg")):
            if ra in frame.columns and dec in frame.columns:
                return ra, dec
        self.fail(node, "this needs sky positions (ra_deg and dec_deg columns); the rows here have: "
                  + ", ".join(list(frame.columns)[:12]))

    def require(self, frame: Frame, node, columns: list[str], what: str) -> None:
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            self.fail(node, f"{what} needs the column(s) {', '.join(missing)}, which the rows here do not have")


AGGREGATES = {"count", "sum", "avg", "mean", "min", "max", "stddev", "std", "variance", "median",
              "percentile_approx", "approx_count_distinct", "collect_list", "collect_set", "first", "last",
              "any_value", "count_if", "bool_and", "bool_or"}
COMPARISONS = {"=": exp.EQ, "!=": exp.NEQ, "<": exp.LT, "<=": exp.LTE, ">": exp.GT, ">=": exp.GTE}


@lru_cache(maxsize=None)
def _wants_dialect(builder) -> bool:
    return "dialect" in inspect.signature(builder).parameters


@lru_cache(maxsize=1)
def _library() -> frozenset[str]:
    from udfs.registry import all_functions

    return frozenset(s.name for s in all_functions())


def _call(name: str, *args) -> exp.Anonymous:
    return exp.Anonymous(this=name, expressions=list(args))


def _num(value: float) -> exp.Expression:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        value = int(value)
    literal = exp.Literal.number(repr(abs(value)) if isinstance(value, float) else str(abs(value)))
    return exp.Neg(this=literal) if value < 0 else literal


def _is_number(text) -> bool:
    try:
        float(text)
        return True
    except (TypeError, ValueError):
        return False


def _iso(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f").rstrip("0").rstrip(".")


def _timestamp(moment: dt.datetime) -> exp.Expression:
    return exp.Cast(this=exp.Literal.string(_iso(moment)), to=exp.DataType.build("timestamp"))


def _date(day: dt.date) -> exp.Expression:
    return exp.Cast(this=exp.Literal.string(day.isoformat()), to=exp.DataType.build("date"))


def _paren(node: exp.Expression) -> exp.Expression:
    if isinstance(node, (exp.Column, exp.Literal, exp.Paren, exp.Func, exp.Dot, exp.Cast, exp.Boolean, exp.Null)) \
            and not isinstance(node, (exp.Binary, exp.Connector, exp.Unary, exp.Predicate)):
        return node
    return exp.Paren(this=node)


def _conjuncts(node: exp.Expression) -> list[exp.Expression]:
    """The AND-ed parts of a condition; an OR stays one part, in parentheses."""
    inner = node.unnest() if isinstance(node, exp.Paren) else node
    if isinstance(inner, exp.And):
        return _conjuncts(inner.this) + _conjuncts(inner.expression)
    return [exp.Paren(this=inner) if isinstance(inner, exp.Or) else inner]


def _paren_logic(node: exp.Expression) -> exp.Expression:
    return exp.Paren(this=node) if isinstance(node, exp.Or) else node


def _describe(typed: Typed) -> str:
    if typed.written:
        return typed.written
    if typed.name and not typed.bare:
        return typed.implicit or typed.name
    return typed.node.sql(dialect="spark")


def _example_unit(unit: str) -> str:
    return {"Hz": "MHz", "Hz/s": "Hz/s", "deg": "arcmin", "s": "s", "Angstrom": "nm"}.get(unit, unit)
