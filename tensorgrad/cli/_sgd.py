"""The gradient-trained models of ``tensorgrad train`` (mlp, softmax, svm, cnn): the classifier
adapter, feature standardisation and the SGD loop with its progress display."""
import sys

import numpy as np

import tensorgrad as tg

EVAL_CHUNK = 8192  # rows per forward pass when scoring a whole split


class Diverged(Exception):
    """The training loss became NaN or infinite."""


def image_shape(n_features):
    """(channels, height, width) of flattened square images: 3×32×32 for CIFAR-10's 3072
    features, 1×s×s for s² features (digits 8×8, MNIST 28×28), 3×s×s for 3·s²; else None."""
    for channels in (1, 3):
        if n_features % channels == 0:
            side = round((n_features // channels) ** 0.5)
            if side * side * channels == n_features and side >= 4:
                return channels, side, side
    return None


class Images(tg.nn.Module):
    """Rows of flattened images [N, C·H·W] seen as [N, C, H, W] (a view, no copy)."""

    def __init__(self, shape):
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x):
        return x.reshape((x.shape[0],) + self.shape)

    def extra_repr(self):
        return "×".join(map(str, self.shape))


def cnn(shape, n_classes, widths=(16, 32)):
    """(conv 3×3 – batch norm – ReLU – 2×2 max-pool) ×2, then a linear layer, on images of
    ``shape`` (C, H, W) given as flat rows."""
    nn = tg.nn
    c, h, w = shape
    layers = [Images(shape)]
    for width in widths:
        layers += [nn.Conv2d(c, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
                   nn.MaxPool2d(2)]
        c, h, w = width, h // 2, w // 2
    layers += [nn.Flatten(), nn.Linear(c * h * w, n_classes)]
    return nn.Sequential(*layers)


class Classifier:
    """Adapter giving the softmax/svm/mlp/cnn models one interface for training and saving."""

    def __init__(self, args, n_features, n_classes):
        nn = tg.nn
        self.cnn = args.model == "cnn"
        if self.cnn:
            shape = image_shape(n_features)
            self.module = cnn(shape, n_classes)
            self.weights = [m.weight for m in self.module.modules()
                            if isinstance(m, (nn.Conv2d, nn.Linear))]
            self.first = None
            self.describe = (f"cnn on {'×'.join(map(str, shape))} images: (conv3×3 – batch "
                             "norm – ReLU – maxpool2) ×2 [16, 32 channels], linear; softmax "
                             "loss")
        elif args.model == "mlp":
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
        training = self.module.training
        self.module.eval()              # batch norm: the running statistics
        try:
            with tg.no_grad():
                for start in range(0, X.shape[0], EVAL_CHUNK):
                    scores = self.module(tg.from_numpy(X[start:start + EVAL_CHUNK]))
                    out[start:start + EVAL_CHUNK] = scores.numpy().argmax(axis=1)
        finally:
            self.module.train(training)
        return out

    def state_dict(self, mean, std):
        """The module's state with x -> (x - mean) / std folded into the first layer; for
        the cnn (whose zero padding would not commute with the folding) the standardisation
        is saved as ``input_mean`` and ``input_std`` next to the module's state."""
        state = {k: np.array(v.numpy(), copy=True) for k, v in self.module.state_dict().items()}
        if self.cnn:
            state.update(input_mean=np.asarray(mean), input_std=np.asarray(std))
            return {k: tg.from_numpy(v) for k, v in state.items()}
        w, b = state[self.first + "weight"], state[self.first + "bias"]
        w /= std
        b -= w @ mean
        return {k: tg.from_numpy(v) for k, v in state.items()}


class ReplayedSteps:
    """The training step recorded once per batch shape as a ``tg.Graph`` and replayed with
    ``graph.step(opt)``: new batches are copied into the recorded inputs, so each step runs
    the planned kernel calls, the SGD update included (the same numbers as eager steps). A
    partial last batch gets its own Graph."""

    def __init__(self, model, opt):
        self.model = model
        self.opt = opt
        self.graphs = {}

    def run(self, Xb, yb):
        """zero_grad, forward, backward and the update of one batch; returns (scores,
        loss)."""
        rec = self.graphs.get(Xb.shape)
        if rec is None:
            X, y = tg.from_numpy(Xb.numpy().copy()), tg.from_numpy(yb.numpy().copy())
            scores = self.model.module(X)
            rec = self.graphs[Xb.shape] = (X, y, scores,
                                           tg.Graph(self.model.loss(scores, y)))
        X, y, scores, graph = rec
        X.copy_(Xb)
        y.copy_(yb)
        return scores, graph.step(self.opt)


def accuracy(pred, y):
    return float(np.mean(pred == y)) if len(y) else float("nan")


def fmt(acc):
    return "n/a (empty split)" if np.isnan(acc) else f"{acc:.4f}"


def standardise(splits):
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


def fit(args, model, Xtr, ytr, Xva, yva, say):
    """SGD epochs; returns the per-epoch history. Raises ``Diverged`` when the loss does.

    Progress: a tqdm bar per epoch when stderr is a terminal; otherwise (a log file, a pipe)
    one plain line per epoch, so that no carriage returns end up in the log."""
    from tqdm.auto import tqdm

    show_bar = not (args.quiet or args.no_progress) and sys.stderr.isatty()
    if args.quiet or show_bar:
        epoch_line = None
    elif args.no_progress:
        epoch_line = say
    else:
        def epoch_line(text):
            print(text, file=sys.stderr)
    params = list(model.module.parameters())
    opt = tg.optim.SGD(params, lr=args.lr, momentum=args.momentum)
    sched = tg.optim.lr_scheduler.StepLR(opt, step_size=max(1, (2 * args.epochs) // 3),
                                         gamma=0.1)
    order = np.random.default_rng(args.seed)
    n_batches = -(-len(ytr) // args.batch_size)
    steps = ReplayedSteps(model, opt)
    history = {"loss": [], "train_acc": [], "val_acc": []}
    for epoch in range(1, args.epochs + 1):
        model.module.train()
        bar = tqdm(total=n_batches, desc=f"epoch {epoch}/{args.epochs}", unit="batch",
                   file=sys.stderr, disable=not show_bar, leave=True, dynamic_ncols=True)
        total_loss, correct = 0.0, 0
        for Xb, yb in tg.data.batches(Xtr, ytr, args.batch_size, seed=order):
            if args.eager:
                scores = model.module(Xb)
                loss = model.loss(scores, yb)
                opt.zero_grad()
                loss.backward()
                opt.step()
            else:
                scores, loss = steps.run(Xb, yb)
            value = loss.item()
            if not np.isfinite(value):
                bar.close()
                raise Diverged(f"the loss diverged ({value}) in epoch {epoch}; try a "
                                "smaller --lr")
            n = len(yb)
            total_loss += value * n
            correct += int((scores.numpy().argmax(axis=1) == yb.numpy()).sum())
            bar.update(1)
            if show_bar:
                bar.set_postfix(loss=f"{value:.4f}", refresh=False)
        sched.step()
        history["loss"].append(total_loss / len(ytr))
        history["train_acc"].append(correct / len(ytr))
        history["val_acc"].append(accuracy(model.predict(Xva), yva))
        if show_bar:
            bar.set_postfix(loss=f"{history['loss'][-1]:.4f}",
                            acc=f"{history['train_acc'][-1]:.4f}",
                            val_acc=fmt(history["val_acc"][-1]))
        bar.close()
        if epoch_line is not None:
            epoch_line(f"epoch {epoch}/{args.epochs}  loss {history['loss'][-1]:.4f}  "
                       f"train acc {history['train_acc'][-1]:.4f}  "
                       f"val acc {fmt(history['val_acc'][-1])}")
    return history
