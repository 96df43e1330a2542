"""Learning-rate schedules (torch.optim.lr_scheduler names)."""
import numbers
from collections.abc import Mapping

__all__ = ["StepLR"]


def _check_int(who, name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{who}: {name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{who}: {name} must be >= {minimum}, got {value}")
    return int(value)


class StepLR:
    """Step decay: lr = initial_lr · gamma^(epoch // step_size). Call ``step()`` once per
    epoch, after the optimizer's steps of that epoch."""

    def __init__(self, optimizer, step_size, gamma=0.1, last_epoch=-1):
        self.step_size = _check_int("StepLR", "step_size", step_size, 1)
        if not isinstance(gamma, numbers.Real) or not gamma >= 0:
            raise ValueError(f"StepLR: gamma must be a number >= 0, got {gamma!r}")
        self.optimizer = optimizer
        self.gamma = float(gamma)
        for g in optimizer.param_groups:
            g.setdefault("initial_lr", g["lr"])
        self.base_lrs = [g["initial_lr"] for g in optimizer.param_groups]
        self.last_epoch = _check_int("StepLR", "last_epoch", last_epoch, -1)
        self.step()

    def get_last_lr(self):
        """The learning rate of each group after the last step()."""
        return list(self._last_lr)

    def step(self):
        """Advance one epoch and set each group's lr for it."""
        self.last_epoch += 1
        self._set_lrs()

    def _set_lrs(self):
        factor = self.gamma ** (self.last_epoch // self.step_size)
        for g, base in zip(self.optimizer.param_groups, self.base_lrs):
            g["lr"] = base * factor
        self._last_lr = [g["lr"] for g in self.optimizer.param_groups]

    def state_dict(self):
        """The schedule's state (plain numbers, which ``tg.save`` can write)."""
        return {"step_size": self.step_size, "gamma": self.gamma,
                "base_lrs": list(self.base_lrs), "last_epoch": self.last_epoch}

    def load_state_dict(self, state):
        """Restore a state from ``state_dict()`` and set the optimizer's lrs to match it.
        Everything is checked first: on an error nothing changes."""
        who = "StepLR.load_state_dict"
        keys = ("step_size", "gamma", "base_lrs", "last_epoch")
        if not isinstance(state, Mapping):
            raise TypeError(f"{who}: expected the dict of StepLR.state_dict(), got "
                            f"{type(state).__name__}")
        missing = [k for k in keys if k not in state]
        if missing:
            raise ValueError(f"{who}: the state dict lacks {', '.join(map(repr, missing))}")
        step_size = _check_int(who, "step_size", state["step_size"], 1)
        last_epoch = _check_int(who, "last_epoch", state["last_epoch"], -1)
        gamma, base_lrs = state["gamma"], state["base_lrs"]
        if not isinstance(gamma, numbers.Real) or not gamma >= 0:
            raise ValueError(f"{who}: gamma must be a number >= 0, got {gamma!r}")
        n = len(self.optimizer.param_groups)
        if not (isinstance(base_lrs, (list, tuple)) and len(base_lrs) == n
                and all(isinstance(lr, numbers.Real) for lr in base_lrs)):
            raise ValueError(f"{who}: base_lrs must be {n} number(s), one per parameter "
                             f"group of the optimizer, got {base_lrs!r}")
        self.step_size, self.gamma, self.last_epoch = step_size, float(gamma), last_epoch
        self.base_lrs = list(base_lrs)
        self._set_lrs()
