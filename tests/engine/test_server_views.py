"""The freshness check of `astrolake serve` (engine/server_views.py), without Spark."""


def test_the_freshness_check_sees_commits_and_new_tables(tmp_path):
    import pyarrow as pa

    from catalogs.lake import Lake
    from engine.server_views import LakeViews

    lake = Lake(tmp_path / "lake")
    lake.create_table("hits", pa.table({"snr": [1.0]}))
    views = LakeViews(spark=None, lake=lake)
    views.versions = {n: lake.snapshot(n).version for n in lake.table_names()}
    assert sorted(views._table_names()) == sorted(lake.table_names())
    assert not any(views._moved(n) for n in views.versions)
    lake.append("hits", pa.table({"snr": [2.0]}))
    assert views._moved("hits")
    views.versions["hits"] = lake.snapshot("hits").version
    assert not views._moved("hits")
    # a writer makes the table's folder first and its log later, which leaves the lake folder alone
    views.RECENT_NS = 0  # trust mtimes at once (the server waits a second: coarse file system clocks)
    (lake.root / "later").mkdir()
    assert "later" not in views._table_names()
    mtime = (lake.root).stat().st_mtime_ns
    (lake.root / "later" / "_delta_log").mkdir()
    assert lake.root.stat().st_mtime_ns == mtime
    assert "later" in views._table_names()
