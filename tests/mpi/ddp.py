"""DistributedDataParallel on W ranks against one process with the whole batch."""
import numpy as np

import tensorgrad as tg
import tensorgrad.distributed as dist
import tensorgrad.nn.functional as F

dist.init()
r, W = dist.get_rank(), dist.get_world_size()
b, steps, epochs = 6, 4, 2                  # per-rank batch; steps per epoch
n = W * b * steps
rng = np.random.default_rng(7)
X = rng.standard_normal((n, 10))
y = rng.integers(0, 3, n)


def make_model(seed):
    tg.manual_seed(seed)
    return tg.nn.Sequential(tg.nn.Linear(10, 16), tg.nn.Tanh(), tg.nn.Linear(16, 8),
                            tg.nn.ReLU(), tg.nn.Linear(8, 3)).double()


def same_on_all_ranks(t):
    parts = dist.all_gather(tg.from_numpy(np.ascontiguousarray(t.numpy())))
    return all(np.array_equal(p.numpy(), parts[0].numpy()) for p in parts)


# single process, batch W*b, the epoch order DistributedSampler uses
ref = make_model(0)
opt = tg.optim.SGD(ref.parameters(), lr=0.1, momentum=0.9)
for epoch in range(epochs):
    order = np.random.default_rng(3 + epoch).permutation(n)
    for s in range(steps):
        idx = order[s * W * b:(s + 1) * W * b]
        opt.zero_grad()
        F.cross_entropy(ref(tg.from_numpy(X[idx])), tg.from_numpy(y[idx])).backward()
        opt.step()

# W ranks, batch b each; rank r starts from a different init: DDP broadcasts rank 0's
model = make_model(r)
ddp = dist.DistributedDataParallel(model, bucket_cap_mb=0.001)   # several buckets
assert len(ddp._buckets) > 1, ddp
started_early = []
first = model[0].weight            # its gradient comes last: in the last bucket
# (registered after DDP's hook, so it runs after it; all earlier buckets must have started)
first.register_post_accumulate_grad_hook(lambda p: started_early.append(ddp._next))
opt = tg.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
sampler = dist.DistributedSampler(n, seed=3)
for epoch in range(epochs):
    sampler.set_epoch(epoch)
    mine = sampler.indices()
    assert len(mine) == n // W
    for s in range(steps):
        idx = mine[s * b:(s + 1) * b]
        opt.zero_grad()
        F.cross_entropy(ddp(tg.from_numpy(X[idx])), tg.from_numpy(y[idx])).backward()
        opt.step()
# the buckets holding the other layers' gradients had started while backward still had
# the first layer's gradients to produce
layer0 = min(k for k, bucket in enumerate(ddp._buckets)
             if any(p is first or p is model[0].bias for p in bucket.params))
assert layer0 >= 1 and started_early == [layer0] * (epochs * steps), (layer0, started_early)
worst = 0.0
for p, q in zip(model.parameters(), ref.parameters()):
    assert same_on_all_ranks(p), "ranks disagree"       # bitwise identical replicas
    worst = max(worst, float(np.abs(p.numpy() - q.numpy()).max()))
assert worst <= 1e-6, worst
if r == 0:
    print(f"max |DDP - single process| after {epochs * steps} steps: {worst:.3g}")

# Graph replay: the averaging comes from backward, so a replayed graph gets it too
m1, m2 = make_model(1), make_model(1)
d1 = dist.DistributedDataParallel(m1)
d2 = dist.DistributedDataParallel(m2)
xb, yb = tg.from_numpy(X[r * b:(r + 1) * b]), tg.from_numpy(y[r * b:(r + 1) * b])
o1 = tg.optim.SGD(m1.parameters(), lr=0.05)
o2 = tg.optim.SGD(m2.parameters(), lr=0.05)
graph = tg.Graph(F.cross_entropy(d2(xb), yb))
for step in range(3):
    o1.zero_grad()
    F.cross_entropy(d1(xb), yb).backward()
    o1.step()
    if step:
        graph.forward()
    o2.zero_grad()
    graph.backward()
    o2.step()
for p, q in zip(m1.parameters(), m2.parameters()):
    assert np.array_equal(p.numpy(), q.numpy()) and same_on_all_ranks(q)

# no_sync: local accumulation, averaged by the next synchronised backward
m3, m4 = make_model(2), make_model(2)
d3, d4 = dist.DistributedDataParallel(m3), dist.DistributedDataParallel(m4)
half = b // 2
with d3.no_sync():
    (F.cross_entropy(d3(xb[:half]), yb[:half]) * 0.5).backward()
    local = m3[0].weight.grad.numpy().copy()
assert not same_on_all_ranks(m3[0].weight.grad) and np.array_equal(
    m3[0].weight.grad.numpy(), local)
(F.cross_entropy(d3(xb[half:]), yb[half:]) * 0.5).backward()
(F.cross_entropy(d4(xb[:half]), yb[:half]) * 0.5 + F.cross_entropy(d4(xb[half:]), yb[half:])
 * 0.5).backward()
for p, q in zip(m3.parameters(), m4.parameters()):
    assert np.allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-12, atol=1e-14)

# a parameter without a gradient is reported (on every rank) at the next forward
m5 = make_model(3)
d5 = dist.DistributedDataParallel(m5)
m5[4](m5[0](xb)[:, :8].tanh()).sum().backward()    # skips m5[2]
try:
    d5(xb)
except RuntimeError as e:
    assert "2.weight" in str(e) and "2.bias" in str(e) and "0.weight" not in str(e), str(e)
else:
    raise AssertionError("no error for an unused parameter")
F.cross_entropy(d5(xb), yb).backward()       # usable again afterwards
assert same_on_all_ranks(m5[2].weight.grad)

# models that differ between ranks are refused on every rank
try:
    dist.DistributedDataParallel(tg.nn.Linear(3 + r, 2))
except ValueError as e:
    assert "differs between ranks" in str(e), str(e)
else:
    raise AssertionError("no error for different models")
print(f"rank {r} ok", flush=True)
