"""`--engine spark`: the same file ingest as a Spark job, committed once by the driver."""

import pyarrow as pa
import pytest

from catalogs.ingest.fits_images import ingest_images
from catalogs.ingest.voltages import ingest_voltages
from catalogs.lake import Lake
from tests.catalogs.ingest.builders import compamp, image_fits, simulated_dat
from tests.conftest import SPARK_MASTER, SPARK_MISSING, run_astrolake

pytestmark = [pytest.mark.spark, pytest.mark.skipif(SPARK_MISSING is not None, reason=str(SPARK_MISSING))]


@pytest.fixture(scope="module")
def spark():
    from engine.spark_session import spark_session

    return spark_session(SPARK_MASTER)


def rows(lake, name, key):
    return pa.table(lake.delta_table(name).to_pyarrow_table()).sort_by(key)


def test_spark_job_gives_the_rows_of_a_local_ingest_in_one_commit(spark, tmp_path):
    paths = [image_fits(tmp_path / f"i{i}.fits", seed=i) for i in range(6)]
    broken = tmp_path / "broken.fits"
    broken.write_bytes(paths[0].read_bytes()[:3000])  # truncated
    local, on_spark = Lake(tmp_path / "local"), Lake(tmp_path / "spark")
    ingest_images(local, [*paths, broken], extract=True)
    report = ingest_images(on_spark, [*paths, broken], extract=True, spark=spark)
    assert report.versions == {"sources": 1, "images": 1}  # one commit per table
    assert [r.path for r in report.rejected] == [str(broken)]
    assert rows(on_spark, "images", "image_id").equals(rows(local, "images", "image_id"))
    assert rows(on_spark, "sources", "source_id").sort_by([("image_id", "ascending"), ("source_id", "ascending")]).equals(
        rows(local, "sources", "source_id").sort_by([("image_id", "ascending"), ("source_id", "ascending")]))
    quarantined = pa.table(on_spark.delta_table("_rejected").to_pyarrow_table())
    assert quarantined["source_file"].to_pylist() == [str(broken)]
    again = ingest_images(on_spark, paths, extract=True, spark=spark)
    assert again.files == [] and len(again.skipped) == len(paths)


@pytest.mark.slow
def test_cli_engine_spark(tmp_path):
    paths = [str(simulated_dat(tmp_path / f"s{i}.dat", seed=i)[0]) for i in range(3)]
    paths.append(str(compamp(tmp_path / "a.compamp")[0]))
    done = run_astrolake("--lake", str(tmp_path / "lake"), "--engine", "spark", "--master", SPARK_MASTER,
                         "ingest", "voltages", *paths)
    assert done.returncode == 0, done.stderr
    assert "ingested 4 files" in done.stdout
    local = Lake(tmp_path / "local")
    ingest_voltages(local, paths)
    assert rows(Lake(tmp_path / "lake"), "voltages", "snapshot_id").equals(rows(local, "voltages", "snapshot_id"))
