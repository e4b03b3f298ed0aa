"""engine/dsl/check.py: expected results, the comparison, the report and JUnit XML."""

import xml.etree.ElementTree as ET

import pyarrow as pa

from engine.dsl.check import check, compare, junit, report, to_csv
from engine.dsl.expect import split_expect


def test_expect_block_is_split_off_keeping_line_numbers():
    query, block = split_expect("from t\nselect a\nexpect tolerance 1e-3\na\n1.5\n")
    assert query == "from t\nselect a" and block.tolerance == 1e-3 and block.csv == "a\n1.5\n" and block.line == 3
    query, block = split_expect("SELECT 1 AS a\n-- expect\n-- a\n-- 1\n")
    assert query == "SELECT 1 AS a" and block.csv == "a\n1\n"
    assert split_expect("from t")[1] is None


def test_compare_numbers_with_tolerance_and_text_exactly():
    assert compare('"a","b"\n1.0000000001,"x"\n', "a,b\n1,x\n", 1e-9) == []
    assert compare('"a","b"\n1.001,"x"\n', "a,b\n1,x\n", 1e-9) == ["row 1, a: expected '1', got '1.001'"]
    assert compare('"a","b"\n1,"y"\n', "a,b\n1,x\n", 1e-9) == ["row 1, b: expected 'x', got 'y'"]
    assert compare('"a"\n1\n2\n', "a\n1\n", 1e-9) == ["rows: expected 1, got 2"]
    assert compare('"a"\n1\n', "b\n1\n", 1e-9) == ["columns: expected b, got a"]


def test_to_csv_is_the_csv_format():
    assert to_csv(pa.table({"a": [1.5], "b": ["x"]})) == '"a","b"\n1.5,"x"\n'


def test_check_a_directory(demo_session, tmp_path):
    (tmp_path / "good.sky").write_text("# ok\nfrom signal_events where snr > 1000 select count() as n\nexpect\nn\n3\n")
    (tmp_path / "bad.sql").write_text("SELECT count(*) AS n FROM signal_events WHERE snr > 1000")
    (tmp_path / "bad.expected.csv").write_text("n\n4\n")
    (tmp_path / "broken.sky").write_text("from signal_events where")
    (tmp_path / "free.sql").write_text("SELECT 1 AS one")
    outcomes = {o.path.name: o for o in check(demo_session, [tmp_path])}
    assert {n: o.status for n, o in outcomes.items()} == {
        "good.sky": "passed", "bad.sql": "failed", "broken.sky": "error", "free.sql": "unchecked"}
    assert outcomes["bad.sql"].details == ["row 1, n: expected '4', got '3'"]
    text = report(list(outcomes.values()))
    assert "FAIL" in text and "row 1, n: expected '4', got '3'" in text and text.endswith("2 failed\n")
    suite = ET.fromstring(junit(list(outcomes.values()), "duckdb"))
    assert suite.get("tests") == "4" and suite.get("failures") == "1" and suite.get("errors") == "1"
    failure = suite.find("testcase[@name='bad.sql']/failure")
    assert failure is not None and "expected '4'" in failure.get("message")
