"""Fused optimiser updates: one pass over memory per parameter, no temporaries.

Each kernel reads the parameter p, its gradient g and the optimiser state (momentum buffer,
Adam moments) element by element and writes p and the state back in place, so an update is
a single streaming pass over 2–4 flat C-contiguous arrays of the parameter's dtype. The
arithmetic is done in that dtype, as PyTorch does (so float32 results match its updates and
run 4 SIMD lanes wide); the hyper-parameters arrive as double and are rounded once. Loops
are `prange` over elements (serial below TG_PAR_MIN). The formulas are PyTorch's
(torch.optim.SGD/Adam, amsgrad=False); the Python layer keeps step counts and bias
corrections.

The option flags (first step, Nesterov, AdamW) become loop-invariant coefficients or select
between separate loops rather than being tested per element: a branch in the loop body
stops the compiler from vectorising it.
"""
from cython.parallel cimport prange
from libc.math cimport sqrt, sqrtf
from cython cimport floating

from tensorgrad._kernels._openmp cimport TG_PAR_MIN


cdef inline floating _sqrt(floating x) noexcept nogil:
    if floating is float:
        return sqrtf(x)
    else:
        return sqrt(x)


def sgd_step(floating[::1] p, const floating[::1] g, double lr, double weight_decay):
    """Plain SGD: p ← p − lr·(g + wd·p)."""
    cdef Py_ssize_t n = p.shape[0], k
    cdef floating a = <floating>lr, wd = <floating>weight_decay
    for k in prange(n, nogil=True, schedule="static", use_threads_if=n >= TG_PAR_MIN):
        p[k] = p[k] - a * (g[k] + wd * p[k])


def sgd_momentum_step(floating[::1] p, const floating[::1] g, floating[::1] buf, double lr,
                      double momentum, double dampening, double weight_decay, bint nesterov,
                      bint first):
    """SGD with momentum (PyTorch):
        d = g + wd·p
        buf = d                                  on the first step
        buf = momentum·buf + (1 − dampening)·d   afterwards
        p ← p − lr·(d + momentum·buf)            Nesterov
        p ← p − lr·buf                           otherwise
    """
    cdef Py_ssize_t n = p.shape[0], k
    cdef bint par = n >= TG_PAR_MIN
    cdef floating a = <floating>lr, mu = <floating>momentum, wd = <floating>weight_decay
    # first step: buf = d (0·buf + 1·d, as PyTorch clones d); later: mu·buf + (1 − damp)·d
    cdef floating keep = <floating>(0.0 if first else momentum)
    cdef floating take = <floating>(1.0 if first else 1.0 - dampening)
    cdef floating d, b
    if first:
        # buf is fresh (uninitialised) memory: clear it so that 0·buf cannot be 0·NaN
        for k in prange(n, nogil=True, schedule="static", use_threads_if=par):
            buf[k] = 0
    if nesterov:
        for k in prange(n, nogil=True, schedule="static", use_threads_if=par):
            d = g[k] + wd * p[k]
            b = keep * buf[k] + take * d
            buf[k] = b
            p[k] = p[k] - a * (d + mu * b)
    else:
        for k in prange(n, nogil=True, schedule="static", use_threads_if=par):
            d = g[k] + wd * p[k]
            b = keep * buf[k] + take * d
            buf[k] = b
            p[k] = p[k] - a * b


def adam_step(floating[::1] p, const floating[::1] g, floating[::1] m, floating[::1] v,
              double lr, double beta1, double beta2, double eps, double weight_decay,
              double bias_correction1, double bias_correction2, bint decoupled):
    """Adam (PyTorch, amsgrad=False), with bc1 = 1 − β1^t, bc2 = 1 − β2^t:
        g' = g + wd·p                 (Adam; AdamW instead scales p by 1 − lr·wd first)
        m = β1·m + (1 − β1)·g'
        v = β2·v + (1 − β2)·g'²
        p ← p − (lr / bc1)·m / (√v / √bc2 + eps)
    """
    cdef Py_ssize_t n = p.shape[0], k
    # Adam folds wd into the gradient, AdamW into a shrink of p: the unused one is 0 / 1
    cdef floating step_size = <floating>(lr / bias_correction1)
    cdef floating inv_bc2_sqrt = <floating>(1.0 / sqrt(bias_correction2))
    cdef floating wd_grad = <floating>(0.0 if decoupled else weight_decay)
    cdef floating shrink = <floating>(1.0 - lr * weight_decay if decoupled else 1.0)
    cdef floating b1 = <floating>beta1, b2 = <floating>beta2, e = <floating>eps
    cdef floating c1 = <floating>(1.0 - beta1), c2 = <floating>(1.0 - beta2)
    cdef floating gk, mk, vk
    for k in prange(n, nogil=True, schedule="static", use_threads_if=n >= TG_PAR_MIN):
        gk = g[k] + wd_grad * p[k]
        mk = b1 * m[k] + c1 * gk
        vk = b2 * v[k] + c2 * gk * gk
        m[k] = mk
        v[k] = vk
        p[k] = p[k] * shrink - step_size * mk / (_sqrt(vk) * inv_bc2_sqrt + e)
