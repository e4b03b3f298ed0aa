"""Every ```sky example in the docs runs on the demo lake, on every engine (a failing example fails
the test). The examples run in order on a copy of the demo lake, since `into` writes."""

import shutil
from pathlib import Path

import pytest

import engine
from tests.test_docs import DOCS, blocks

SKY_DOCS = [p for p in DOCS if blocks(p, "sky")]


def test_the_sky_reference_has_examples():
    assert any(p.name == "sky.md" for p in SKY_DOCS)
    assert len(blocks(Path(engine.__file__).resolve().parents[1] / "docs" / "sky.md", "sky")) >= 20


@pytest.mark.parametrize("doc", SKY_DOCS, ids=lambda p: p.name)
def test_sky_examples_run(doc, demo_lake_path, tmp_path, engine_name):
    shutil.copytree(demo_lake_path, tmp_path / "lake")
    with engine.connect(tmp_path / "lake", engine=engine_name) as session:
        for example in blocks(doc, "sky"):
            try:
                result = session.sky(example)
            except Exception as e:  # noqa: BLE001 - name the failing example
                pytest.fail(f"{doc.name}: this example failed: {e}\n{example}")
            assert result.num_columns > 0, example
