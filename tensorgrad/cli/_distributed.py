"""``tensorgrad train --distributed`` under ``mpiexec -n W``: the data-parallel SGD loop and
the sharded kNN of the train command.

SGD: ``--batch-size`` is the total batch over all ranks. Every rank draws the same epoch
order as the single-process loop (``_sgd.fit``) and takes every W-th sample of each batch;
its data loss is weighted by (its rows · W / batch rows), so that the mean over ranks that
``DistributedDataParallel`` takes of the gradients is the gradient of the whole batch. The
run follows the single-process run with the same total batch up to float rounding.
kNN: rank r holds the r-th contiguous shard of the training split and the cross-validation
folds' training sets; the sharded search returns the single-process neighbours.
Only rank 0 writes to stdout.
"""
import os
import sys

import numpy as np

import tensorgrad as tg
from tensorgrad.cli._sgd import Diverged, accuracy, fmt
from tensorgrad.neighbors.knn import _vote


def setup(args):
    """Join the MPI job; silence stdout and progress on ranks other than 0."""
    try:
        import tensorgrad.distributed as dist
    except ImportError as e:
        from tensorgrad.cli._common import UsageError
        raise UsageError(f"--distributed: {e}") from None
    dist.init()
    args.rank, args.world = dist.get_rank(), dist.get_world_size()
    if args.rank != 0:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (for the rest of the run)
        args.quiet = True
    if args.threads is None and args.world > 1:     # the ranks share the cores
        args.threads = max(1, tg._runtime._default_threads() // args.world)
    return dist


def abort(code):
    """End every rank of the job (a rank that stops alone would leave the others waiting)."""
    import tensorgrad.distributed as dist
    sys.stdout.flush()
    sys.stderr.flush()
    if dist.get_world_size() > 1:
        from mpi4py import MPI
        MPI.COMM_WORLD.Abort(code)
    return code


def fit(args, model, Xtr, ytr, Xva, yva, say):
    """Data-parallel SGD epochs (see the module docstring); returns the per-epoch history."""
    import tensorgrad.distributed as dist

    rank, world = args.rank, args.world
    ddp = dist.DistributedDataParallel(model.module)
    params = list(model.module.parameters())
    opt = tg.optim.SGD(params, lr=args.lr, momentum=args.momentum)
    sched = tg.optim.lr_scheduler.StepLR(opt, step_size=max(1, (2 * args.epochs) // 3),
                                         gamma=0.1)
    order = np.random.default_rng(args.seed)
    n = len(ytr)
    history = {"loss": [], "train_acc": [], "val_acc": []}
    for epoch in range(1, args.epochs + 1):
        perm = order.permutation(n)         # what tg.data.batches draws in _sgd.fit
        sums = tg.zeros(2, dtype=tg.float64)       # [loss * rows, correct] over this rank
        for start in range(0, n, args.batch_size):
            batch = perm[start:start + args.batch_size]
            mine = batch[rank::world]
            weight = len(mine) * world / len(batch)
            if not len(mine):       # fewer rows than ranks: a zero-weight row keeps the
                mine = batch[:1]    # backward (and its all-reduces) in step with the others
            Xb, yb = tg.from_numpy(Xtr[mine]), tg.from_numpy(ytr[mine])
            scores = ddp(Xb)
            data = model.data_loss(scores, yb)
            loss = data if weight == 1 else data * weight
            penalty = 0.0
            if model.reg:
                terms = [(w * w).sum() for w in model.weights]
                reg = terms[0]
                for term in terms[1:]:
                    reg = reg + term
                loss = loss + model.reg * reg
                penalty = model.reg * reg.item()
            opt.zero_grad()
            loss.backward()
            opt.step()
            value = data.item()
            if not np.isfinite(value):
                raise Diverged(f"the loss diverged ({value}) in epoch {epoch} on rank {rank}; "
                               f"try a smaller --lr")
            if weight:
                sums._data[0] += (value + penalty) * len(mine)
                sums._data[1] += int((scores.numpy().argmax(axis=1) == yb.numpy()).sum())
        dist.all_reduce(sums)
        sched.step()
        history["loss"].append(float(sums._data[0]) / n)
        history["train_acc"].append(float(sums._data[1]) / n)
        history["val_acc"].append(accuracy(model.predict(Xva), yva))
        if not args.quiet:
            line = (f"epoch {epoch}/{args.epochs}  loss {history['loss'][-1]:.4f}  "
                    f"train acc {history['train_acc'][-1]:.4f}  "
                    f"val acc {fmt(history['val_acc'][-1])}")
            if args.no_progress:
                say(line)
            else:
                print(line, file=sys.stderr)
    return history


def shard(X, y, rank, world):
    """Rank ``rank``'s contiguous block of rows (blocks in rank order, sizes within one)."""
    lo, hi = len(y) * rank // world, len(y) * (rank + 1) // world
    return X[lo:hi], y[lo:hi]


def cross_validate_k(X, y, ks, n_folds, rank, world):
    """``tg.neighbors.cross_validate_k``'s folds and scores, each fold's training set sharded
    over the ranks (the same numbers on every rank)."""
    # tg.chunk's folds: ceil(N / n_folds) rows each, the last one shorter
    size = -(-len(y) // n_folds)
    x_folds = [X[i:i + size] for i in range(0, len(y), size)]
    y_folds = [y[i:i + size] for i in range(0, len(y), size)]
    kmax = max(ks)
    results = {k: [] for k in ks}
    for i in range(len(x_folds)):
        x_train = np.concatenate(x_folds[:i] + x_folds[i + 1:])
        y_train = np.concatenate(y_folds[:i] + y_folds[i + 1:])
        clf = tg.neighbors.KNeighborsClassifier(kmax, distributed=True)
        clf.fit(*shard(x_train, y_train, rank, world))
        _, idx = clf.kneighbors(x_folds[i])
        neigh = clf._y[idx.numpy()]
        for k in ks:
            pred = clf.classes_[_vote(neigh[:, :k], len(clf.classes_))]
            results[k].append(float(np.mean(pred == y_folds[i])))
    return results
