"""SGD with momentum, dampening, Nesterov and weight decay (torch.optim.SGD's formulas)."""
from types import MappingProxyType

import numpy as np

from tensorgrad._kernels import optim as OK
from tensorgrad.optim.optimizer import Optimizer, flat_param

__all__ = ["SGD"]


class SGD(Optimizer):
    """Stochastic gradient descent; for each parameter p with gradient g:

        d = g + weight_decay·p
        buf = d                                      (first step)
        buf = momentum·buf + (1 − dampening)·d       (later steps; only when momentum > 0)
        d = d + momentum·buf   if nesterov   else   buf
        p ← p − lr·d

    Each parameter is updated in place by one fused kernel pass (p, g and buf read once).
    """
    _state_spec = MappingProxyType({"momentum_buffer": "array"})

    def __init__(self, params, lr, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False):
        super().__init__(params, {"lr": lr, "momentum": momentum, "dampening": dampening,
                                  "weight_decay": weight_decay, "nesterov": nesterov})

    def _validate(self, group):
        super()._validate(group)
        if not group["momentum"] >= 0:
            raise ValueError(f"SGD: invalid momentum {group['momentum']!r} (must be >= 0)")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("SGD: Nesterov momentum requires momentum > 0 and dampening = 0")

    def step(self, closure=None):
        """Update every parameter that has a gradient; returns closure() if given."""
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            lr, wd, mom = float(group["lr"]), float(group["weight_decay"]), group["momentum"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                pd, gd, tmp = flat_param(p, "SGD")
                if mom == 0:
                    OK.sgd_step(pd, gd, lr, wd)
                else:
                    st = self._state(p)
                    buf = st.get("momentum_buffer")
                    first = buf is None
                    if first:
                        buf = st["momentum_buffer"] = np.empty(p.shape, pd.dtype)  # kernel fills
                    OK.sgd_momentum_step(pd, gd, buf.reshape(-1), lr, float(mom),
                                         float(group["dampening"]), wd,
                                         bool(group["nesterov"]), first)
                if tmp is not None:
                    np.copyto(p._data, tmp)
                p._version[0] += 1
        return loss

    # -- planned updates (Optimizer._plan_update, tg.Graph.step) -----------------------------
    _planned_step = step

    def _plan_kind(self, group):
        if group["momentum"] == 0:
            return OK.SGD
        return OK.NESTEROV if group["nesterov"] else OK.MOMENTUM

    def _plan_state(self, p, kind):
        if kind == OK.SGD:
            return ()
        buf = self.state.get(id(p), {}).get("momentum_buffer")
        return None if buf is None else (buf,)      # planned after the first (eager) step

    def _plan_hyper(self, group, kind, params, h):
        h[0] = float(group["lr"])
        h[1] = float(group["weight_decay"])
        h[2] = float(group["momentum"])
        h[3] = float(group["dampening"])
