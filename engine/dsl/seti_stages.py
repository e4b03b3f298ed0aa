"""The SETI stages of Sky: ``search drift``, ``classify`` and ``cadence``, as sqlglot trees.

- ``search drift [max 4 Hz/s] [snr 10]`` turns spectrogram rows into one row per hit of the
  library's ``dedoppler`` (a ``LATERAL VIEW explode``): the spectrogram's scalar columns (id,
  target, position, site), ``observed_at`` (its ``start_at``) and the hit's freq_hz, drift_hz_s,
  snr, chan_index, freq_start_hz, freq_end_hz and bandwidth_hz.
- ``classify`` adds ``signal_class`` and ``class_probability`` (``classify_signal``) to rows that
  carry a spectrogram (power, n_time, n_chans).
- ``cadence on "A" off "B", "C" [tolerance 5 Hz]`` keeps the hits of target A seen in every scan of
  A (a scan is one observed_at of the target) and in no scan of B, C...: a hit h of A matches a
  hit g of another scan when |f_g - f_h| <= tolerance + bandwidth_h / 2 + |drift_h| x |t_g - t_h|,
  the window widened by the drift over the time between the two scans (both read from the rows,
  no constants). It is a self-join of the rows, so it runs on both engines.
"""

from __future__ import annotations

import pyarrow as pa
from sqlglot import exp

from engine.dsl import ast, units

HIT_FIELDS = ("freq_hz", "drift_hz_s", "snr", "chan_index", "freq_start_hz", "freq_end_hz")
HIT_UNITS = {"freq_hz": "Hz", "drift_hz_s": "Hz/s", "freq_start_hz": "Hz", "freq_end_hz": "Hz",
             "bandwidth_hz": "Hz", "snr": None, "chan_index": None}
SPECTROGRAM_INPUTS = ("power", "n_time", "n_chans", "tsamp_s", "fch1_hz", "foff_hz")
DEFAULT_MAX_DRIFT_HZ_S = 4.0
DEFAULT_SNR = 10.0
DEFAULT_TOLERANCE_HZ = 5.0


def _call(name: str, *args) -> exp.Anonymous:
    return exp.Anonymous(this=name, expressions=list(args))


def _num(value: float) -> exp.Expression:
    return exp.Literal.number(repr(float(value)))


def _dot(struct: str, field: str) -> exp.Expression:
    return exp.Dot(this=exp.column(struct), expression=exp.to_identifier(field))


def _quantity_in(compiler, node, unit: str, default: float, what: str) -> float:
    if node is None:
        return default
    if not isinstance(node, ast.Quantity):
        compiler.fail(node, f"{what} needs a unit ({unit})")
    value, written = compiler.quantity_value(node), compiler.unit_text(node)
    try:
        return units.convert(value, written, unit)
    except units.UnitProblem:
        compiler.fail(node, f"{what} must be in {unit} or a unit of the same kind, not {written}")


def search_drift(compiler, frame, stage: ast.Stage):
    from engine.dsl.compiler import Frame

    compiler.require(frame, stage, list(SPECTROGRAM_INPUTS), "search drift")
    max_drift = _quantity_in(compiler, stage.args.get("max"), "Hz/s", DEFAULT_MAX_DRIFT_HZ_S, "search drift max")
    snr = compiler.number_arg(stage.args.get("snr"), DEFAULT_SNR, stage)
    if max_drift <= 0 or snr <= 0:
        compiler.fail(stage, "search drift needs a positive max drift rate and a positive snr")
    frame = compiler.wrap(frame) if frame.computed else frame
    keep = [c for c, t in frame.types.items()
            if c not in SPECTROGRAM_INPUTS and c not in HIT_FIELDS and c != "start_at"
            and t is not None and not pa.types.is_binary(t)]
    call = _call("dedoppler", *[exp.column(c) for c in SPECTROGRAM_INPUTS], _num(max_drift), _num(snr))
    lateral = exp.Lateral(this=exp.Explode(this=call), view=True,
                          alias=exp.TableAlias(this=exp.to_identifier("_t"), columns=[exp.to_identifier("_hit")]))
    projections = [exp.column(c) for c in keep]
    if "start_at" in frame.columns:
        projections.append(exp.alias_(exp.column("start_at"), "observed_at"))
    projections += [exp.alias_(_dot("_hit", f), f) for f in HIT_FIELDS]
    projections.append(exp.alias_(exp.func("abs", exp.Sub(this=_dot("_hit", "freq_end_hz"),
                                                          expression=_dot("_hit", "freq_start_hz"))), "bandwidth_hz"))
    select = frame.select
    select.set("expressions", projections)
    select.set("laterals", [lateral])
    columns = {c: frame.columns.get(c) for c in keep}
    types = {c: frame.types.get(c) for c in keep}
    if "start_at" in frame.columns:
        columns["observed_at"], types["observed_at"] = None, pa.timestamp("us", tz="UTC")
    for f in (*HIT_FIELDS, "bandwidth_hz"):
        columns[f] = HIT_UNITS[f]
        types[f] = pa.int32() if f == "chan_index" else pa.float64()
    return compiler.wrap(Frame(select, columns, types, computed=True))


def classify(compiler, frame, stage: ast.Stage):
    compiler.require(frame, stage, ["power", "n_time", "n_chans"], "classify")
    frame = compiler.wrap(frame) if frame.computed else frame
    frame.select.select(exp.alias_(_call("classify_signal", *[exp.column(c) for c in ("power", "n_time", "n_chans")]),
                                   "_class"), copy=False)
    outer = compiler.wrap(frame)
    outer.select.set("expressions", [exp.column(c) for c in frame.columns]
                     + [exp.alias_(_dot("_class", "label"), "signal_class"),
                        exp.alias_(_dot("_class", "probability"), "class_probability")])
    outer.columns |= {"signal_class": None, "class_probability": None}
    outer.types |= {"signal_class": pa.string(), "class_probability": pa.float64()}
    outer.computed = True
    return compiler.wrap(outer)


def _seconds(node: exp.Expression) -> exp.Expression:
    return exp.StrToUnix(this=node)  # Spark unix_timestamp(ts); DuckDB gets epoch (spark_on_duckdb)


def _within(x: str, g: str, tolerance_hz: float, has_bandwidth: bool) -> exp.Expression:
    """|f_g - f_x| <= tolerance + bandwidth_x / 2 + |drift_x| * |t_g - t_x|"""
    col = lambda t, c: exp.column(c, t)  # noqa: E731
    window: exp.Expression = _num(tolerance_hz)
    if has_bandwidth:
        half = exp.Div(this=exp.func("coalesce", col(x, "bandwidth_hz"), _num(0)), expression=_num(2))
        window = exp.Add(this=window, expression=half)
    gap = exp.func("abs", exp.Sub(this=_seconds(col(g, "observed_at")), expression=_seconds(col(x, "observed_at"))))
    window = exp.Add(this=window, expression=exp.Mul(this=exp.func("abs", col(x, "drift_hz_s")), expression=gap))
    distance = exp.func("abs", exp.Sub(this=col(g, "freq_hz"), expression=col(x, "freq_hz")))
    return exp.LTE(this=distance, expression=exp.paren(window))


def cadence(compiler, frame, stage: ast.Stage):
    from engine.dsl.compiler import Frame

    compiler.require(frame, stage, ["target", "observed_at", "freq_hz", "drift_hz_s"], "cadence")
    tolerance = _quantity_in(compiler, stage.args.get("tolerance"), "Hz", DEFAULT_TOLERANCE_HZ, "cadence tolerance")
    if tolerance < 0:
        compiler.fail(stage, "cadence tolerance must not be negative")
    on = stage.args["on"].value
    off = [s.value for s in stage.args["off"]]
    if on in off:
        compiler.fail(stage.args["on"], f"'{on}' cannot be both ON and OFF")
    source = compiler.wrap(frame) if frame.computed else frame
    rows = source.select

    def rows_as(alias: str) -> exp.Subquery:
        return exp.Subquery(this=rows.copy(), alias=exp.TableAlias(this=exp.to_identifier(alias)))

    has_bandwidth = "bandwidth_hz" in frame.columns
    is_on = lambda t: exp.EQ(this=exp.column("target", t), expression=exp.Literal.string(on))  # noqa: E731
    is_off = exp.column("target", "_off").isin(*[exp.Literal.string(o) for o in off])
    scans_on = exp.select(exp.func("count", exp.Distinct(expressions=[exp.column("observed_at")]))).from_(
        rows_as("_scans")).where(is_on("_scans"))
    columns = [c for c, t in frame.types.items() if t is None or not pa.types.is_binary(t)]
    keys = [exp.column(c, "_x") for c in columns]
    select = (exp.select(*[exp.alias_(k.copy(), c) for k, c in zip(keys, columns)])
              .from_(rows_as("_x"))
              .join(rows_as("_on"), on=exp.and_(is_on("_on"), _within("_x", "_on", tolerance, has_bandwidth)))
              .join(rows_as("_off"), on=exp.and_(is_off, _within("_x", "_off", tolerance, has_bandwidth)),
                    join_type="left")
              .where(is_on("_x"))
              .group_by(*keys)
              .having(exp.and_(
                  exp.EQ(this=exp.func("count", exp.Distinct(expressions=[exp.column("observed_at", "_on")])),
                         expression=exp.Subquery(this=scans_on)),
                  exp.EQ(this=exp.func("count", exp.column("freq_hz", "_off")), expression=exp.Literal.number(0)))))
    result = Frame(select, {c: frame.columns.get(c) for c in columns}, {c: frame.types.get(c) for c in columns},
                   computed=True)
    return compiler.wrap(result)
