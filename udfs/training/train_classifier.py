"""Train the shipped signal classifier and autoencoder: ``python -m udfs.training.train_classifier``.

Deterministic: setigen spectrograms from fixed seeds (simulate.py), features from udfs/classify.py,
then, in plain numpy with fixed initial weights, a softmax MLP (one tanh hidden layer, Adam,
cross-entropy + L2) and a dense autoencoder to 3 dimensions (Adam, mean squared error). Writes
udfs/models/signal_classifier.npz and prints the confusion matrix on a held-out set generated
from another seed (docs/classification.md records it). About 3 minutes on one core.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from udfs.classify import FEATURES, MODEL_FILE, features, mlp_probabilities
from udfs.training.simulate import LABELS, dataset

TRAIN_SEED, HELD_OUT_SEED, INIT_SEED = 20261122, 7_000_001, 12345
OUTPUT = Path(__file__).resolve().parent.parent / "models" / MODEL_FILE


class Adam:
    def __init__(self, params: dict, lr: float):
        self.params, self.lr, self.t = params, lr, 0
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}

    def step(self, grads: dict):
        self.t += 1
        for k, g in grads.items():
            self.m[k] = 0.9 * self.m[k] + 0.1 * g
            self.v[k] = 0.999 * self.v[k] + 0.001 * g * g
            m_hat = self.m[k] / (1 - 0.9 ** self.t)
            v_hat = self.v[k] / (1 - 0.999 ** self.t)
            self.params[k] -= self.lr * m_hat / (np.sqrt(v_hat) + 1e-8)


def _init(rng, n_in, n_out):
    return rng.normal(0, 1 / np.sqrt(n_in), (n_in, n_out)), np.zeros(n_out)


def train_mlp(x, y, n_classes, rng, hidden=48, epochs=300, batch=256, lr=0.01, l2=1e-4):
    p = {}
    p["w1"], p["b1"] = _init(rng, x.shape[1], hidden)
    p["w2"], p["b2"] = _init(rng, hidden, n_classes)
    opt = Adam(p, lr)
    onehot = np.eye(n_classes)[y]
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for s in range(0, len(x), batch):
            idx = order[s:s + batch]
            xb, yb = x[idx], onehot[idx]
            h = np.tanh(xb @ p["w1"] + p["b1"])
            logits = h @ p["w2"] + p["b2"]
            logits -= logits.max(axis=1, keepdims=True)
            prob = np.exp(logits)
            prob /= prob.sum(axis=1, keepdims=True)
            d_logits = (prob - yb) / len(idx)
            d_h = (d_logits @ p["w2"].T) * (1 - h * h)
            opt.step({"w2": h.T @ d_logits + l2 * p["w2"], "b2": d_logits.sum(axis=0),
                      "w1": xb.T @ d_h + l2 * p["w1"], "b1": d_h.sum(axis=0)})
    return p


def train_autoencoder(x, rng, hidden=16, code=3, epochs=300, batch=256, lr=0.005):
    p = {}
    p["e1"], p["eb1"] = _init(rng, x.shape[1], hidden)
    p["e2"], p["eb2"] = _init(rng, hidden, code)
    p["d1"], p["db1"] = _init(rng, code, hidden)
    p["d2"], p["db2"] = _init(rng, hidden, x.shape[1])
    opt = Adam(p, lr)
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for s in range(0, len(x), batch):
            xb = x[order[s:s + batch]]
            h1 = np.tanh(xb @ p["e1"] + p["eb1"])
            c = h1 @ p["e2"] + p["eb2"]
            h2 = np.tanh(c @ p["d1"] + p["db1"])
            out = h2 @ p["d2"] + p["db2"]
            d_out = 2 * (out - xb) / xb.size
            d_h2 = (d_out @ p["d2"].T) * (1 - h2 * h2)
            d_c = d_h2 @ p["d1"].T
            d_h1 = (d_c @ p["e2"].T) * (1 - h1 * h1)
            opt.step({"d2": h2.T @ d_out, "db2": d_out.sum(axis=0), "d1": c.T @ d_h2, "db1": d_h2.sum(axis=0),
                      "e2": h1.T @ d_c, "eb2": d_c.sum(axis=0), "e1": xb.T @ d_h1, "eb1": d_h1.sum(axis=0)})
    return p


def feature_matrix(spectrograms) -> np.ndarray:
    return np.array([features(s) for s in spectrograms])


def confusion(truth: np.ndarray, predicted: np.ndarray, n: int) -> np.ndarray:
    matrix = np.zeros((n, n), dtype=np.int64)
    np.add.at(matrix, (truth, predicted), 1)
    return matrix


def render_confusion(matrix: np.ndarray) -> str:
    """A Markdown table: rows are the true class, columns the predicted one."""
    short = [label[:12] for label in LABELS]
    lines = ["| true \\ predicted | " + " | ".join(short) + " | recall |",
             "|---|" + "---|" * (len(LABELS) + 1)]
    for k, label in enumerate(LABELS):
        recall = matrix[k, k] / max(matrix[k].sum(), 1)
        lines.append(f"| {label} | " + " | ".join(str(v) for v in matrix[k]) + f" | {recall:.1%} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m udfs.training.train_classifier", description=__doc__)
    parser.add_argument("--per-class", type=int, default=2000, help="training spectrograms per class (default 2000)")
    parser.add_argument("--held-out-per-class", type=int, default=300, help="held-out spectrograms per class (default 300)")
    parser.add_argument("--output", type=Path, default=OUTPUT, help=f"the model file (default {OUTPUT})")
    args = parser.parse_args(argv)
    start = time.perf_counter()

    def log(message):
        print(f"[{time.perf_counter() - start:6.1f} s] {message}", file=sys.stderr, flush=True)

    log(f"simulating {args.per_class} training spectrograms per class (seed {TRAIN_SEED})")
    train_x, train_y = dataset(args.per_class, TRAIN_SEED)
    x = feature_matrix(train_x)
    log(f"simulating {args.held_out_per_class} held-out spectrograms per class (seed {HELD_OUT_SEED})")
    test_x, test_y = dataset(args.held_out_per_class, HELD_OUT_SEED)
    xt = feature_matrix(test_x)
    mean, std = x.mean(axis=0), x.std(axis=0)
    std[std == 0] = 1.0
    xs, xts = (x - mean) / std, (xt - mean) / std
    rng = np.random.default_rng(INIT_SEED)
    log("training the classifier MLP")
    mlp = train_mlp(xs, train_y, len(LABELS), rng)
    log("training the autoencoder")
    ae = train_autoencoder(xs, rng)
    model = {"labels": np.array(LABELS), "feature_names": np.array(FEATURES), "feature_mean": mean,
             "feature_std": std, **mlp, **ae}
    from udfs.classify import decode, encode

    errors = np.mean((decode(encode(xs, model), model) - xs) ** 2, axis=1)
    model["train_median_error"] = np.array(np.median(errors))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.output, **{k: (v.astype(np.float32) if v.dtype == np.float64 else v)
                                        for k, v in model.items()})
    train_acc = (mlp_probabilities(xs, model).argmax(axis=1) == train_y).mean()
    predicted = mlp_probabilities(xts, model).argmax(axis=1)
    matrix = confusion(test_y, predicted, len(LABELS))
    log(f"wrote {args.output} ({args.output.stat().st_size:,} bytes)")
    print(f"training accuracy {train_acc:.1%} on {len(train_y)}; held-out accuracy "
          f"{np.trace(matrix) / matrix.sum():.1%} on {matrix.sum()} (seed {HELD_OUT_SEED})\n")
    print(render_confusion(matrix))
    return 0


if __name__ == "__main__":
    sys.exit(main())
