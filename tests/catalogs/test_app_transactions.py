"""The one-pass reader of a table's app-transaction ids agrees with delta-rs, id by id, through
checkpoints; where it cannot be sure it answers None (and the ingest asks delta-rs)."""

import datetime as dt
import shutil

import pyarrow as pa

from catalogs.app_transactions import app_transaction_ids
from catalogs.lake import Lake


def quarantine_rows(n: int) -> pa.Table:
    return pa.table({
        "target_table": ["spectra"] * n, "source_file": ["f.fits"] * n, "source_sha256": ["0" * 64] * n,
        "row_number": pa.array([0] * n, pa.int64()), "reason": ["bad"] * n,
        "rejected_at": pa.array([dt.datetime(2024, 5, 1, tzinfo=dt.timezone.utc)] * n, pa.timestamp("us", tz="UTC")),
    })


def commit(lake: Lake, k: int, per_commit: int = 3) -> list[str]:
    ids = [f"astrolake.ingest.spectra:{k:04d}-{j}" for j in range(per_commit)]
    lake.append("_rejected", quarantine_rows(1), app_ids=tuple(ids))
    return ids


def agrees_with_delta_rs(lake: Lake, ids: list[str]) -> set[str]:
    table = lake.delta_table("_rejected")
    found = app_transaction_ids(lake.path("_rejected"), table.version(), table.metadata().configuration)
    assert found is not None
    for app_id in ids + ["astrolake.ingest.spectra:absent", "astrolake.ingest.images:0000-0"]:
        assert (app_id in found) == (table.transaction_version(app_id) is not None), app_id
    return found


def test_every_id_of_every_commit_across_a_checkpoint(lake):
    ids = [i for k in range(5) for i in commit(lake, k)]
    assert agrees_with_delta_rs(lake, ids) == set(ids)
    lake.delta_table("_rejected").create_checkpoint()
    ids += [i for k in range(5, 8) for i in commit(lake, k)]
    assert agrees_with_delta_rs(lake, ids) == set(ids)


def test_only_the_commits_up_to_the_version_asked(lake):
    first = commit(lake, 0)
    version = lake.delta_table("_rejected").version()
    commit(lake, 1)
    assert app_transaction_ids(lake.path("_rejected"), version) == set(first)


def test_a_log_it_cannot_read_whole_is_left_to_delta_rs(lake):
    for k in range(3):
        commit(lake, k)
    root = lake.path("_rejected")
    version = lake.delta_table("_rejected").version()
    assert app_transaction_ids(root, version, {"delta.setTransactionRetentionDuration": "interval 1 days"}) is None
    copy = root.parent / "copy"
    shutil.copytree(root, copy)
    (copy / "_delta_log" / f"{1:020d}.json").unlink()  # a gap, no checkpoint to cover it
    assert app_transaction_ids(copy, version) is None
    (copy / "_delta_log" / f"{version:020d}.checkpoint.0123abcd-0000-0000-0000-000000000000.json").write_text("{}")
    assert app_transaction_ids(copy, version) is None  # a V2 checkpoint
