"""Linear classifiers s = W·x + b on digits: multiclass SVM loss vs softmax loss.

    SVM:      L_i = Σ_{j≠y_i} max(0, s_j − s_{y_i} + 1)
    softmax:  L_i = −log(exp(s_{y_i}) / Σ_j exp(s_j))

Same data, model and optimiser; only the loss differs.
Run:  python examples/svm_vs_softmax.py
"""
import numpy as np

import tensorgrad as tg
import tensorgrad.nn.functional as F
from tensorgrad import nn

# The two losses on one example: the SVM is satisfied once the correct class wins by the
# margin; the softmax loss is never exactly zero and keeps pushing the correct score up.
label = tg.tensor([0])
for scores in ([[10.0, -2.0, 3.0]], [[10.0, 9.5, 9.0]]):
    s = tg.tensor(scores)
    print(f"scores {scores[0]}: svm {F.multiclass_hinge_loss(s, label).item():.4f}, "
          f"softmax {F.cross_entropy(s, label).item():.4f}")

X, y = tg.data.load_digits()
(X_train, y_train), _, (X_test, y_test) = tg.data.train_val_test_split(X, y, seed=1)
mean = X_train.mean(0)
std = ((X_train - mean) ** 2).mean(0).sqrt().clamp(min=1e-3)   # training-set statistics
X_train, X_test = (X_train - mean) / std, (X_test - mean) / std

for name, loss_fn, lr in (("svm", F.multiclass_hinge_loss, 0.002),
                          ("softmax", F.cross_entropy, 0.05)):
    tg.manual_seed(0)                          # the same initial W for both
    model = nn.Linear(64, 10)
    optimizer = tg.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    for epoch in range(20):
        for X_batch, y_batch in tg.data.batches(X_train, y_train, 32, seed=epoch):
            loss = loss_fn(model(X_batch), y_batch) + 1e-3 * (model.weight ** 2).sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    with tg.no_grad():
        predicted = model(X_test).numpy().argmax(axis=1)
    print(f"{name:8s} test accuracy {np.mean(predicted == y_test.numpy()):.4f}")
