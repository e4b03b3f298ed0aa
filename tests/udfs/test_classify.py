"""classify_signal / signal_embedding: the shipped model on freshly simulated setigen spectrograms."""

from importlib import resources

import numpy as np
import pyarrow as pa
import pytest

from udfs.classify import CLASS_TYPE, EMBEDDING_TYPE, FEATURES, MODEL_FILE, features, model
from udfs.registry import call, evaluate, get

pytest.importorskip("setigen", reason="setigen (a dev dependency) is needed to simulate signals")
from udfs.training.simulate import LABELS, dataset  # noqa: E402

FRESH_SEED = 424242  # neither the training seed nor the held-out seed of train_classifier
GOAL_ACCURACY = 0.90


def run(name, arrays):
    columns = [pa.array([a.astype("<f4").tobytes() for a in arrays], pa.binary()),
               pa.array([a.shape[0] for a in arrays], pa.int32()),
               pa.array([a.shape[1] for a in arrays], pa.int32())]
    return evaluate(get(name), columns)


@pytest.fixture(scope="module")
def fresh():
    return dataset(25, FRESH_SEED)


def test_model_ships_in_the_package():
    path = resources.files("udfs").joinpath("models", MODEL_FILE)
    assert path.is_file() and path.stat().st_size < 1_000_000
    m = model()
    assert tuple(m["labels"]) == LABELS and tuple(m["feature_names"]) == FEATURES
    assert m["w1"].shape[0] == len(FEATURES) and m["e2"].shape[1] == 3


@pytest.mark.slow
def test_accuracy_on_a_fresh_held_out_set(fresh):
    spectrograms, truth = fresh
    result = run("classify_signal", spectrograms)
    assert result.type == CLASS_TYPE
    rows = result.to_pylist()
    predicted = np.array([LABELS.index(r["label"]) for r in rows])
    accuracy = (predicted == truth).mean()
    assert accuracy >= GOAL_ACCURACY, accuracy
    assert all(0 < r["probability"] <= 1 for r in rows)
    for k in range(len(LABELS)):  # every class is recognised most of the time
        assert (predicted[truth == k] == k).mean() >= 0.7, LABELS[k]


def test_clear_cases(fresh):
    rng = np.random.default_rng(5)
    noise = rng.chisquare(10, (32, 256))
    tone = noise.copy()
    tone[np.arange(32), 60 + np.arange(32)] += 40  # a drifting tone, one channel per step
    pixel = noise.copy()
    pixel[17, 99] += 200
    labels = [r["label"] for r in run("classify_signal", [noise, tone, pixel]).to_pylist()]
    assert labels == ["noise", "narrowband", "brightpixel"]


@pytest.mark.slow
def test_embedding_and_anomaly_score(fresh):
    spectrograms, _ = fresh
    result = run("signal_embedding", spectrograms)
    assert result.type == EMBEDDING_TYPE
    rows = result.to_pylist()
    assert all(len(r["embedding"]) == 3 and np.isfinite(r["embedding"]).all() for r in rows)
    scores = np.array([r["anomaly_score"] for r in rows])
    assert 0.5 < np.median(scores) < 2  # the training signals' median is 1 by definition
    rng = np.random.default_rng(6)
    unlike = []
    burst = rng.chisquare(10, (32, 256))
    burst[10, :] += 50  # a broadband burst in one step
    unlike.append(burst)
    sine = rng.chisquare(10, (32, 256))
    t = np.arange(32)
    sine[t, (128 + 60 * np.sin(t / 3)).astype(int)] += 80  # a tone swinging 60 channels
    unlike.append(sine)
    comb = rng.chisquare(10, (32, 256))
    comb[:, ::16] += 60  # sixteen steady tones
    unlike.append(comb)
    odd = [r["anomaly_score"] for r in run("signal_embedding", unlike).to_pylist()]
    assert min(odd) > np.percentile(scores, 95), (odd, np.percentile(scores, 95))


def test_features_do_not_depend_on_scale():
    rng = np.random.default_rng(7)
    x = rng.chisquare(10, (16, 128))
    x[:, 40] += 30
    np.testing.assert_allclose(features(x), features(x * 1e6 + 5e6), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("power, n_time, n_chans, reason", [
    (b"\x00" * 4 * 16 * 64, 16, 32, "not 4 * n_time * n_chans"),
    (b"\x00" * 4 * 2 * 64, 2, 64, "at least 4 x 16"),
    (np.full(64 * 16, np.nan, "<f4").tobytes(), 16, 64, "NaN"),
])
def test_bad_input_is_null_with_reason(power, n_time, n_chans, reason):
    for name in ("classify_signal", "signal_embedding"):
        assert call(name, power, n_time, n_chans) is None
        assert reason in call(name + "_error", power, n_time, n_chans)


def test_through_sql(demo_session):
    rng = np.random.default_rng(8)
    x = rng.chisquare(10, (16, 64)).astype("<f4")
    x[np.arange(16), 10 + 2 * np.arange(16)] += 60
    blob = x.tobytes().hex()
    got = demo_session.sql(
        f"SELECT c.label, c.probability, e.embedding, e.anomaly_score, "
        f"classify_signal_error(unhex('{blob}'), 16, 32) AS why FROM "
        f"(SELECT classify_signal(unhex('{blob}'), 16, 64) AS c, signal_embedding(unhex('{blob}'), 16, 64) AS e) AS t"
    ).to_pylist()
    assert len(got) == 1
    row = got[0]
    assert row["label"] == "narrowband" and 0 < row["probability"] <= 1
    assert len(row["embedding"]) == 3 and row["anomaly_score"] > 0
    assert "not 4 * n_time * n_chans" in row["why"]
