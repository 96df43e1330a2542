"""Memory is a feature: the y = x@W backward never forms a Jacobian or a transposed copy."""
import gc
import tracemalloc

import numpy as np

import tensorgrad as tg


def test_matmul_backward_peak_memory_64x4096x4096():
    """With N=64, D=M=4096 the explicit Jacobians would take 256 GB; the implicit products
    need dL/dx (1 MB) and dL/dW (64 MB). Measure the peak during backward with tracemalloc
    (numpy reports its buffers to it)."""
    rng = np.random.default_rng(0)
    x = tg.tensor(rng.standard_normal((64, 4096), dtype=np.float32), requires_grad=True)
    W = tg.tensor(rng.standard_normal((4096, 4096), dtype=np.float32) * 0.01,
                  requires_grad=True)
    y = x @ W
    g = tg.ones(64, 4096)
    w_bytes = W.nelement() * W.element_size()
    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        start, _ = tracemalloc.get_traced_memory()
        y.backward(g)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    extra = peak - start
    # dW (one W-sized buffer) + dx (1 MB); no transposed copy of W or x, no Jacobian
    assert extra <= 1.2 * w_bytes, f"backward used {extra / 2**20:.1f} MiB extra"
    assert extra >= w_bytes          # the gradient itself must exist
    ref_dx = g.numpy() @ W.numpy().T
    np.testing.assert_allclose(x.grad.numpy(), ref_dx, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(W.grad.numpy(), x.numpy().T @ g.numpy(), rtol=1e-4, atol=1e-3)
