"""Learning-rate schedules (torch.optim.lr_scheduler names)."""

__all__ = ["StepLR"]


class StepLR:
    """Step decay: lr = initial_lr · gamma^(epoch // step_size). Call ``step()`` once per
    epoch, after the optimizer's steps of that epoch."""

    def __init__(self, optimizer, step_size, gamma=0.1, last_epoch=-1):
        if int(step_size) != step_size or step_size < 1:
            raise ValueError(f"StepLR: step_size must be a positive integer, got {step_size!r}")
        if not gamma >= 0:
            raise ValueError(f"StepLR: gamma must be >= 0, got {gamma!r}")
        self.optimizer = optimizer
        self.step_size = int(step_size)
        self.gamma = float(gamma)
        for g in optimizer.param_groups:
            g.setdefault("initial_lr", g["lr"])
        self.base_lrs = [g["initial_lr"] for g in optimizer.param_groups]
        self.last_epoch = last_epoch
        self.step()

    def get_last_lr(self):
        """The learning rate of each group after the last step()."""
        return list(self._last_lr)

    def step(self):
        self.last_epoch += 1
        factor = self.gamma ** (self.last_epoch // self.step_size)
        for g, base in zip(self.optimizer.param_groups, self.base_lrs):
            g["lr"] = base * factor
        self._last_lr = [g["lr"] for g in self.optimizer.param_groups]

    def state_dict(self):
        return {"step_size": self.step_size, "gamma": self.gamma,
                "base_lrs": list(self.base_lrs), "last_epoch": self.last_epoch}

    def load_state_dict(self, state):
        self.step_size = state["step_size"]
        self.gamma = state["gamma"]
        self.base_lrs = list(state["base_lrs"])
        self.last_epoch = state["last_epoch"]
        factor = self.gamma ** (self.last_epoch // self.step_size)
        for g, base in zip(self.optimizer.param_groups, self.base_lrs):
            g["lr"] = base * factor
        self._last_lr = [g["lr"] for g in self.optimizer.param_groups]
