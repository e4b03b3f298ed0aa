import numpy as np
import pyarrow as pa
import pytest

from engine.errors import UdfError
from udfs import registry
from udfs.registry import Arg, UdfSpec, evaluate


def halve(x):
    return x / 2


def checked_sqrt(x):
    errors = [None if v >= 0 else f"negative value {v}" for v in x]
    return np.sqrt(np.where(x >= 0, x, 0)), errors


HALVE = UdfSpec("halve_test", (Arg("x", pa.float64()),), pa.float64(), halve, "Half of x.")
SQRT = UdfSpec("sqrt_test", (Arg("x", pa.float64()),), pa.float64(), checked_sqrt, "Square root.",
               reports_errors=True)


def test_null_in_null_out_and_the_kernel_sees_no_nulls():
    seen = []

    def spy(x):
        seen.append(x.copy())
        return x * 10

    spec = UdfSpec("spy_test", (Arg("x", pa.float64()),), pa.float64(), spy, "Ten times x.")
    out = evaluate(spec, [pa.array([1.0, None, 3.0, None])])
    assert out.to_pylist() == [10.0, None, 30.0, None]
    assert seen[0].tolist() == [1.0, 3.0]


def test_all_null_and_empty():
    assert evaluate(HALVE, [pa.array([None, None], pa.float64())]).to_pylist() == [None, None]
    assert evaluate(HALVE, [pa.array([], pa.float64())]).to_pylist() == []


def test_bad_rows_are_null_and_the_companion_says_why():
    values = pa.array([4.0, -1.0, None, 9.0])
    assert evaluate(SQRT, [values]).to_pylist() == [2.0, None, None, 3.0]
    companion = SQRT.error_spec()
    assert companion.name == "sqrt_test_error"
    assert evaluate(companion, [values]).to_pylist() == [None, "negative value -1.0", None, None]


def test_a_kernel_returning_the_wrong_length_is_an_error():
    spec = UdfSpec("short_test", (Arg("x", pa.float64()),), pa.float64(), lambda x: x[:1], "Broken.")
    with pytest.raises(UdfError, match="returned 1 values for 2 rows"):
        evaluate(spec, [pa.array([1.0, 2.0])])


def test_declarations_are_validated():
    with pytest.raises(UdfError, match="lower-case identifier"):
        UdfSpec("Bad-Name", (), pa.float64(), halve, "doc")
    with pytest.raises(UdfError, match="needs a docstring"):
        UdfSpec("nodoc", (), pa.float64(), halve, " ")


def test_duplicate_names_raise():
    spec = UdfSpec("dup_test_fn", (Arg("x", pa.float64()),), pa.float64(), halve, "doc")
    registry.register(spec)
    try:
        with pytest.raises(UdfError, match="registered twice"):
            registry.register(spec)
    finally:
        registry._REGISTRY.pop("dup_test_fn")


def test_every_library_function_is_well_formed():
    functions = registry.all_functions()
    assert "distance" in [f.name for f in functions]
    for spec in functions:
        assert spec.signature.startswith(spec.name + "(")
        assert spec.doc.strip()


def test_call_and_unknown_names():
    assert registry.call("distance", 0.0, 0.0, 0.0, 1.0) == pytest.approx(1.0)
    with pytest.raises(UdfError, match="no function 'distanse' in the library \\(did you mean 'distance'\\?\\)"):
        registry.get("distanse")


def test_library_functions_run_in_sql_on_every_engine(demo_session):
    got = demo_session.sql(
        "SELECT distance(359.9, 0, 0.1, 0) AS wrap, distance(NULL, 0, 0, 0) AS n, "
        "count(*) AS hits, max(distance(ra_deg, dec_deg, 346.6223, -5.0413)) AS farthest "
        "FROM signal_events WHERE target = 'TRAPPIST-1'").to_pylist()[0]
    assert got["wrap"] == pytest.approx(0.2, abs=1e-12)
    assert got["n"] is None
    assert got["hits"] > 0 and got["farthest"] == pytest.approx(0.0, abs=1e-9)


def test_numeric_arguments_arrive_in_the_declared_type():
    import decimal

    seen = []

    def kernel(x, n):
        seen.append((x.dtype, n.dtype))
        return x * n

    spec = UdfSpec("scaled", (Arg("x", pa.float64()), Arg("n", pa.int32())), pa.float64(), kernel, "x times n")
    out = evaluate(spec, [pa.array([decimal.Decimal("1.5"), None], pa.decimal128(2, 1)), pa.array([2, 3], pa.int64())])
    assert out.to_pylist() == [3.0, None] and seen == [(np.float64, np.int32)]
    with pytest.raises(UdfError, match="argument n"):
        evaluate(spec, [pa.array([1.0]), pa.array([2**40], pa.int64())])
