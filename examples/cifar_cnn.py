"""A CIFAR-style convolutional net written by hand:

    (conv 3×3 → batch norm → ReLU → 2×2 max-pool) ×2 → linear → softmax loss

trained by SGD with momentum. Given a CIFAR-10 folder (the python-pickle batches), it trains
on the 3×32×32 images; without one it trains the same net on the bundled digits (1×8×8
images), which takes a few seconds.
Run:  python examples/cifar_cnn.py [CIFAR10_FOLDER]   (or set CIFAR10_DIR)
"""
import os
import sys

import tensorgrad as tg
import tensorgrad.nn.functional as F
from tensorgrad import nn


class CifarCNN(nn.Module):
    def __init__(self, in_channels, side, n_classes=10, widths=(32, 64)):
        super().__init__()
        c1, c2 = widths
        self.conv1 = nn.Conv2d(in_channels, c1, 3, padding=1)   # [N, c1, side, side]
        self.bn1 = nn.BatchNorm2d(c1)
        self.conv2 = nn.Conv2d(c1, c2, 3, padding=1)            # [N, c2, side/2, side/2]
        self.bn2 = nn.BatchNorm2d(c2)
        self.fc = nn.Linear(c2 * (side // 4) ** 2, n_classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)   # halves the image
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2)
        return self.fc(x.flatten(1))                           # [N, c2·(side/4)²] → scores


def load():
    """((X_train, y_train), (X_test, y_test)) as [N, C, H, W] float32 arrays, and a name."""
    folder = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("CIFAR10_DIR")
    if folder:
        (X, y), (Xt, yt) = tg.data.load_cifar10(folder, flatten=False)
        return (X.numpy(), y.numpy()), (Xt.numpy(), yt.numpy()), "CIFAR-10"
    X, y = tg.data.load_digits()
    (X, y), _, (Xt, yt) = tg.data.train_val_test_split(X, y, seed=1)
    return ((X.numpy().reshape(-1, 1, 8, 8), y.numpy()),
            (Xt.numpy().reshape(-1, 1, 8, 8), yt.numpy()), "digits")


(X_train, y_train), (X_test, y_test), name = load()
# Standardise each channel with the training set's statistics.
mean = X_train.mean(axis=(0, 2, 3), keepdims=True)
std = X_train.std(axis=(0, 2, 3), keepdims=True)
X_train, X_test = ((X - mean) / std for X in (X_train, X_test))

tg.manual_seed(0)
cifar = name == "CIFAR-10"
model = CifarCNN(X_train.shape[1], X_train.shape[2], widths=(32, 64) if cifar else (16, 32))
optimizer = tg.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
epochs = 10
print(f"{name}: {len(y_train)} training images of {'×'.join(map(str, X_train.shape[1:]))}; "
      f"{sum(p.numel() for p in model.parameters())} parameters")


def accuracy(X, y):
    model.eval()                                   # batch norm uses its running statistics
    correct = 0
    with tg.no_grad():
        for start in range(0, len(y), 1000):
            scores = model(tg.from_numpy(X[start:start + 1000]))
            correct += int((scores.numpy().argmax(axis=1) == y[start:start + 1000]).sum())
    model.train()
    return correct / len(y)


for epoch in range(1, epochs + 1):
    if epoch == 2 * epochs // 3 + 1:
        for group in optimizer.param_groups:       # the learning rate drops 10× at the end
            group["lr"] /= 10
    for X_batch, y_batch in tg.data.batches(X_train, y_train, batch_size=64, seed=epoch):
        loss = F.cross_entropy(model(X_batch), y_batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    if epoch % 5 == 0 or cifar:
        print(f"epoch {epoch:2d}  loss {loss.item():.4f}  train accuracy "
              f"{accuracy(X_train[:5000], y_train[:5000]):.4f}")

print(f"test accuracy {accuracy(X_test, y_test):.4f}")
