"""The course's two-layer net on real handwritten digits.

    f(x) = W2·max(0, W1·x + b1) + b2,    loss = softmax loss + reg·(ΣW1² + ΣW2²)

trained by mini-batch SGD with momentum on the bundled digits set (8x8 images, 10 classes).
Run:  python examples/two_layer_digits.py      (takes a few seconds)
"""
import numpy as np

import tensorgrad as tg
import tensorgrad.nn.functional as F
from tensorgrad import nn

tg.manual_seed(0)
X, y = tg.data.load_digits()                   # X [1797, 64] in [0, 1], y [1797] int64
# 70/10/20 stratified split; seed 1 is the split `python -m tensorgrad train` uses
(X_train, y_train), (X_val, y_val), (X_test, y_test) = tg.data.train_val_test_split(X, y, seed=1)

# Standardise with training-set statistics only, so nothing leaks from the test set.
# Constant pixels (the image border) have std 0: clamping keeps them at 0 instead of NaN.
mean = X_train.mean(0)
std = ((X_train - mean) ** 2).mean(0).sqrt().clamp(min=1e-3)
X_train, X_val, X_test = ((X_ - mean) / std for X_ in (X_train, X_val, X_test))

model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 10))
optimizer = tg.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
reg = 3e-3
W1, W2 = model[0].weight, model[2].weight      # regularise weights, not biases


def accuracy(X, y):
    with tg.no_grad():                         # evaluation records no graph
        return float(np.mean(model(X).numpy().argmax(axis=1) == y.numpy()))


for epoch in range(1, 21):
    for X_batch, y_batch in tg.data.batches(X_train, y_train, batch_size=64, seed=epoch):
        penalty = (W1 * W1).sum() + (W2 * W2).sum()
        loss = F.cross_entropy(model(X_batch), y_batch) + reg * penalty
        optimizer.zero_grad()
        loss.backward()                        # one reverse pass gives every gradient
        optimizer.step()                       # w <- w - lr * (momentum-smoothed dL/dw)
    if epoch % 5 == 0:
        print(f"epoch {epoch:2d}  loss {loss.item():.4f}  "
              f"val accuracy {accuracy(X_val, y_val):.4f}")

print(f"test accuracy {accuracy(X_test, y_test):.4f}")
