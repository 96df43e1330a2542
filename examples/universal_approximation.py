"""A two-layer ReLU net is a universal approximator: fit sin(x) on [−π, π].

    f(x) = Σ_k a_k · max(0, w_k·x + b_k) + c

Each hidden unit is a hinge with a kink at x = −b_k / w_k; a sum of hinges is a piecewise
linear curve, and two opposite hinges make a "bump". With more units there are more kinks
and the curve follows sin(x) more closely. We train by Adam on the mean squared error and
report the largest error on a grid finer than the training points.
Run:  python examples/universal_approximation.py
"""
import math

import numpy as np

import tensorgrad as tg
import tensorgrad.nn.functional as F
from tensorgrad import nn

points = np.linspace(-math.pi, math.pi, 256, dtype=np.float32)[:, None]     # [256, 1]
x, target = tg.tensor(points), tg.tensor(np.sin(points))
grid = np.linspace(-math.pi, math.pi, 2001, dtype=np.float32)[:, None]      # unseen points


def fit(hidden, steps=3000):
    tg.manual_seed(0)
    model = nn.Sequential(nn.Linear(1, hidden), nn.ReLU(), nn.Linear(hidden, 1))
    optimizer = tg.optim.Adam(model.parameters(), lr=1e-2)
    scheduler = tg.optim.lr_scheduler.StepLR(optimizer, step_size=steps // 2, gamma=0.1)
    for _ in range(steps):
        loss = F.mse_loss(model(x), target)    # full batch: all 256 points each step
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()                       # a 10x smaller step for the second half
    with tg.no_grad():
        error = np.abs(model(tg.tensor(grid)).numpy() - np.sin(grid))
    return loss.item(), error


for hidden in (4, 16, 64):
    mse, error = fit(hidden)
    print(f"{hidden:3d} ReLU units: training mse {mse:.1e}, max |f(x) - sin(x)| on [-pi, pi] "
          f"= {error.max():.4f} (at x = {grid[error.argmax()][0]:+.2f})")
