"""Fuzzing: thousands of generated and mutated queries; whatever the input, the compiler either
returns a tree or raises Sky's own errors (SkySyntaxError, SkyCompileError) - never anything else."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlglot import exp

from engine.dsl.compiler import compile_sky
from engine.errors import SkyCompileError, SkyError, SkySyntaxError

COLUMNS = ["snr", "freq", "freq_hz", "drift", "drift_hz_s", "ra", "dec_deg", "target", "site", "beam",
           "observed_at", "bandwidth", "freq_bary", "nope", "x_pix", "flux"]
UNITS = ["Hz", "kHz", "MHz", "GHz", "Hz/s", "mHz/s", "deg", "arcmin", "arcsec", "mas", "s", "min", "h", "d", "nm", "Å",
         "km/s"]
TABLES = ["signal_events", "images", "voltages", "sources", "spectra", "spectrograms", "nope"]
PARAMS = {"target": "Vega", "min": "10", "r": "3", "word": "x'); DROP TABLE t; --"}

numbers = st.one_of(st.integers(-10**6, 10**6).map(str), st.floats(-1e9, 1e9, allow_nan=False).map(repr),
                    st.sampled_from(["1e308", "1e400", "0", "-0", ".5", "$min", "$nope"]))
values = st.one_of(
    numbers, st.builds(lambda n, u: f"{n} {u}", numbers.filter(lambda n: not n.startswith("-")), st.sampled_from(UNITS)),
    st.sampled_from(COLUMNS), st.text(max_size=8).map(lambda s: '"' + s.replace('"', "").replace("\n", "") + '"'),
    st.sampled_from(["2017-02-01", "2017-02-01T10:00", "$word", "true", "null"]))
conditions = st.recursive(
    st.builds(lambda a, op, b: f"{a} {op} {b}", values, st.sampled_from(["<", ">", "=", "!=", "<=", ">="]), values)
    | st.builds(lambda a, b, c: f"{a} between {b} and {c}", values, values, values)
    | st.builds(lambda a: f"{a} is not null", values)
    | st.builds(lambda f, a: f"{f}({a})", st.sampled_from(["abs", "round", "year", "count", "max", "distance", "foo"]), values),
    lambda inner: st.builds(lambda a, op, b: f"({a} {op} {b})", inner, st.sampled_from(["and", "or"]), inner)
    | inner.map(lambda c: f"not {c}"),
    max_leaves=6)
steps = st.one_of(
    conditions.map(lambda c: f"where {c}"),
    st.builds(lambda n, r, u: f'near "{n}" within {r} {u}', st.sampled_from(["TRAPPIST-1", "vega", "nowhere", "10 20"]),
              numbers, st.sampled_from(UNITS)),
    st.builds(lambda a, b, r: f"near ({a}, {b}) within {r} arcmin", numbers, numbers, numbers),
    st.builds(lambda a, b: f"during {a} .. {b}", st.sampled_from(["2017-02-01", "2017", "mjd 57800", '"2017-01-01 10:00"']),
              st.sampled_from(["2017-03-01", "2018", "57900", "2016-01-01T00:00"])),
    st.sampled_from(["correct doppler", "extract sources thresh 2", "spectrogram fft 64 integrate 2", "search drift",
                     "classify", "match sources within 2 arcsec", "match spectra as s within 1 deg all",
                     "near $target within $r arcmin"]))
shapes = st.lists(st.sampled_from([
    "select snr", "select freq as MHz, drift as Hz", "select count() as n", "group by site", "having n > 1",
    "order by snr desc", "limit 5", "limit $min", "into out", "into out append", "select target, max(snr) group by target",
]), max_size=3)
queries = st.builds(lambda t, ss, sh: "\n".join([f"from {t}", *ss, *sh]), st.sampled_from(TABLES),
                    st.lists(steps, max_size=4), shapes)


def mutate(text: str, data) -> str:
    for _ in range(data.draw(st.integers(1, 4))):
        if not text:
            break
        i = data.draw(st.integers(0, len(text) - 1))
        choice = data.draw(st.integers(0, 3))
        if choice == 0:
            text = text[:i] + text[i + 1:]
        elif choice == 1:
            text = text[:i] + data.draw(st.sampled_from(list("\"'()$#.,-+*/<>=\n\\%`;") + ["..", " MHz", " and", "é", "\x00"])) + text[i:]
        elif choice == 2:
            j = data.draw(st.integers(i, len(text)))
            text = text[:i] + text[j:] + text[i:j]
        else:
            text = text[:i] + text[i:].upper()
    return text


def _compiles_or_sky_error(text: str) -> None:
    try:
        tree = compile_sky(text, PARAMS)
    except (SkySyntaxError, SkyCompileError) as e:
        assert isinstance(e, SkyError)
        assert str(e)
        return
    assert isinstance(tree, exp.Expression)
    tree.sql(dialect="spark")  # and it prints


SETTINGS = settings(max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


@pytest.mark.slow
@SETTINGS
@given(queries)
def test_generated_queries(text):
    _compiles_or_sky_error(text)


@pytest.mark.slow
@SETTINGS
@given(queries, st.data())
def test_mutated_queries(text, data):
    _compiles_or_sky_error(mutate(text, data))


@pytest.mark.slow
@settings(max_examples=600, deadline=None, derandomize=True)
@given(st.text(max_size=80))
def test_arbitrary_text(text):
    _compiles_or_sky_error(text)
