"""Adam and AdamW (torch.optim.Adam / AdamW formulas, amsgrad=False)."""
import numbers
from types import MappingProxyType

import numpy as np

from tensorgrad._kernels import optim as OK
from tensorgrad.optim.optimizer import Optimizer, flat_param

__all__ = ["Adam", "AdamW"]


class Adam(Optimizer):
    """Adam; for each parameter p with gradient g, at step t = 1, 2, ...:

        g = g + weight_decay·p
        m = β1·m + (1 − β1)·g              v = β2·v + (1 − β2)·g²
        p ← p − lr/(1 − β1^t) · m / (√v / √(1 − β2^t) + eps)

    Each parameter is updated in place by one fused kernel pass over p, g, m and v.
    """
    _decoupled = False
    _state_spec = MappingProxyType({"step": "count", "exp_avg": "array", "exp_avg_sq": "array"})

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps,
                                  "weight_decay": weight_decay})

    def _validate(self, group):
        super()._validate(group)
        name = type(self).__name__
        betas = group["betas"]
        try:
            b1, b2 = betas
        except (TypeError, ValueError):
            raise ValueError(f"{name}: betas must be a pair, got {betas!r}") from None
        for i, b in enumerate((b1, b2)):
            if not isinstance(b, numbers.Real) or not 0.0 <= b < 1.0:
                raise ValueError(f"{name}: invalid beta parameter at index {i}: {b!r} "
                                 f"(must be in [0, 1))")
        if not group["eps"] >= 0:
            raise ValueError(f"{name}: invalid epsilon {group['eps']!r} (must be >= 0)")

    def step(self, closure=None):
        """Update every parameter that has a gradient; returns closure() if given."""
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            lr, wd, eps = float(group["lr"]), float(group["weight_decay"]), float(group["eps"])
            b1, b2 = (float(b) for b in group["betas"])
            for p in group["params"]:
                if p.grad is None:
                    continue
                pd, gd, tmp = flat_param(p, type(self).__name__)
                st = self._state(p)
                if not st:
                    st["step"] = 0
                    st["exp_avg"] = np.zeros(p.shape, pd.dtype)
                    st["exp_avg_sq"] = np.zeros(p.shape, pd.dtype)
                st["step"] += 1
                t = st["step"]
                OK.adam_step(pd, gd, st["exp_avg"].reshape(-1), st["exp_avg_sq"].reshape(-1),
                             lr, b1, b2, eps, wd, 1.0 - b1 ** t, 1.0 - b2 ** t,
                             self._decoupled)
                if tmp is not None:
                    np.copyto(p._data, tmp)
                p._version[0] += 1
        return loss


    # -- planned updates (Optimizer._plan_update, tg.Graph.step) -----------------------------
    _planned_step = step

    def _plan_kind(self, group):
        return OK.ADAMW if self._decoupled else OK.ADAM

    def _plan_state(self, p, kind):
        st = self.state.get(id(p))
        if not st:
            return None                 # planned after the first (eager) step
        return st["exp_avg"], st["exp_avg_sq"]

    def _plan_check(self, group, kind, params):
        # one bias correction per group: every parameter at the same step
        steps = {self.state.get(id(p), {}).get("step") for p in params}
        return len(steps) == 1 and None not in steps

    def _plan_hyper(self, group, kind, params, h):
        b1, b2 = (float(b) for b in group["betas"])
        for p in params:
            self.state[id(p)]["step"] += 1
        t = self.state[id(params[0])]["step"]
        h[0] = float(group["lr"])
        h[1] = float(group["weight_decay"])
        h[2] = b1
        h[3] = b2
        h[4] = float(group["eps"])
        h[5] = 1.0 - b1 ** t
        h[6] = 1.0 - b2 ** t


class AdamW(Adam):
    """Adam with decoupled weight decay: p ← p·(1 − lr·weight_decay) before the Adam step
    (the gradient is not modified). Default weight_decay = 0.01 as in PyTorch."""
    _decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
