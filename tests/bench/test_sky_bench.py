"""Smoke test of bench/sky_bench.py: the 50-line query compiles and the section renders (no timing asserted)."""

from bench.sky_bench import fifty_line_query, measure, render
from bench.sections import sections


def test_sky_bench_renders_its_section(tmp_path):
    assert len(fifty_line_query().splitlines()) == 50
    result = measure(runs=2)
    text = render(result)
    assert "## Sky compile time" in text and "parse + compile" in text
    from bench.sections import write_section

    page = tmp_path / "benchmarks.md"
    write_section(page, "sky", text)
    assert "sky" in sections(page.read_text())
