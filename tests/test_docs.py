"""The docs are tested: every example runs, every command, option, table and column is documented."""

import re
import shlex
import shutil
from pathlib import Path

import click
import pytest

import engine
from catalogs.schemas import CATALOG, sql_type
from engine.cli import cli, main

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "docs").glob("*/*.md"))]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


def blocks(path: Path, language: str) -> list[str]:
    return [body for lang, body in FENCE.findall(path.read_text()) if lang == language]


def docs_with(language):
    return [p for p in DOCS if blocks(p, language)]


def all_commands(group: click.Group, prefix="astrolake"):
    for name, command in group.commands.items():
        yield f"{prefix} {name}", command
        if isinstance(command, click.Group):
            yield from all_commands(command, f"{prefix} {name}")


@pytest.fixture
def workdir(demo_lake_path, tmp_path, monkeypatch):
    """A directory like a checkout after `make run`: ./lake (a copy of the demo), docs/, queries/."""
    shutil.copytree(demo_lake_path, tmp_path / "lake")
    (tmp_path / "docs").symlink_to(ROOT / "docs")
    (tmp_path / "queries").symlink_to(ROOT / "queries")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ASTROLAKE_LAKE", raising=False)
    return tmp_path


def test_every_command_and_option_is_documented():
    text = (ROOT / "docs" / "cli.md").read_text()
    for name, command in all_commands(cli):
        assert f"`{name}" in text, f"{name} is not in docs/cli.md"
        for param in command.params:
            for opt in param.opts:
                if opt.startswith("--") and opt not in ("--help",):
                    assert opt in text, f"{name} {opt} is not in docs/cli.md"


def test_every_table_and_column_is_documented():
    text = (ROOT / "docs" / "sql.md").read_text()
    for table in CATALOG.values():
        assert f"### `{table.name}`" in text
        for column in table.columns:
            row = f"| `{column.name}` | {sql_type(column.type)} | {column.unit} |"
            assert row in text, f"{table.name}.{column.name}: expected a row starting {row!r} in docs/sql.md"


@pytest.mark.parametrize("doc", docs_with("sql"), ids=lambda p: p.name)
def test_sql_examples_run(doc, workdir, engine_name):
    with engine.connect(workdir / "lake", engine=engine_name) as session:
        for example in blocks(doc, "sql"):
            result = session.sql(example)
            assert result.num_columns > 0


def run_console_examples(doc, capsys, on_spark: bool):
    for block in blocks(doc, "console"):
        lines = block.splitlines()
        for i, line in enumerate(lines):
            if not line.startswith("$ astrolake ") or ("--engine spark" in line) != on_spark:
                continue
            following = lines[i + 1] if i + 1 < len(lines) else ""
            expect_error = following.startswith("error:")
            try:
                main(shlex.split(line[len("$ astrolake "):]))
                code = 0
            except SystemExit as e:
                code = e.code
            out, err = capsys.readouterr()
            if expect_error:
                assert code == 1, f"{doc.name}: {line} should fail"
                assert err.startswith(following), f"{doc.name}: {line}: {err!r}"
            else:
                assert code == 0, f"{doc.name}: {line} failed: {err}"


@pytest.mark.parametrize("doc", docs_with("console"), ids=lambda p: p.name)
def test_console_examples_run(doc, workdir, capsys):
    run_console_examples(doc, capsys, on_spark=False)


SPARK_DOCS = [p for p in docs_with("console") if any("--engine spark" in b for b in blocks(p, "console"))]


@pytest.mark.parametrize("doc", SPARK_DOCS, ids=lambda p: p.name)
@pytest.mark.spark
def test_console_examples_on_spark_run(doc, workdir, capsys):
    from tests.conftest import SPARK_MISSING

    if SPARK_MISSING:
        pytest.skip(SPARK_MISSING)
    run_console_examples(doc, capsys, on_spark=True)


@pytest.mark.parametrize("doc", docs_with("python"), ids=lambda p: p.name)
def test_python_examples_run(doc, workdir):
    for example in blocks(doc, "python"):
        exec(compile(example, str(doc), "exec"), {})


def test_every_function_is_documented():
    from udfs.registry import ERROR_SUFFIX, all_functions

    text = "\n".join(p.read_text() for p in [ROOT / "docs" / "functions.md", *(ROOT / "docs" / "functions").glob("*.md")])
    for spec in all_functions():
        if spec.name.endswith(ERROR_SUFFIX):
            continue  # the companions are documented once, in the rules of docs/functions.md
        assert f"`{spec.name}(" in text, f"function {spec.name} is not documented under docs/functions"
