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
# 2. derive backpropagation by hand on a network of one neuron per layer, generalise it to
#    Nielsen's four equations BP1–BP4, and check the gradient two ways (finite differences and
#    torch's autograd);
# 3. write backprop for a whole mini-batch as matrix products, bias sum included;
# 4. show *by experiment* why the step is divided by `len(mini_batch)`, and where torch's
#    `F.mse_loss` puts (or drops) that division;
# 5. train on handwritten digits, choose `eta` on a validation set and report the test set once.
#
# The code is in `nnlib.sgd` (same names as Nielsen's); this notebook shows the lines that teach.

# %%
# Set-up. On Colab this installs what the series needs and Colab lacks (about a minute, once),
# holding every package Colab preinstalls at its version (its ipywidgets 7 above all);
# anywhere else it does nothing, because `make lab` already installed everything.
import sys
if "google.colab" in sys.modules:  # pragma: no cover - runs on Colab only
    import subprocess
    url, name = "https://github.com/sgd-to-llama/sgd-to-llama", "sgd-to-llama"
    subprocess.run(f"test -d {name} || git clone -q --depth 1 {url} {name}", shell=True, check=True)
    subprocess.run([sys.executable, f"{name}/scripts/colab_setup.py"], check=True)
    sys.path.insert(0, name)  # this kernel sees the new packages without a restart
    import importlib; importlib.invalidate_caches()

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch

from nnlib.data import load_digits
from nnlib.plots import plot_accuracy_grid, plot_eps_sweep, plot_history, show_digits
from nnlib.sgd import Network, accuracy_grid, sigmoid, sigmoid_prime, torch_gradients, torch_step

np.set_printoptions(precision=4, suppress=True)
torch.manual_seed(0)
rng = np.random.default_rng(0)

# %% [markdown]
# ## 1. The data: 8×8 handwritten digits
#
# Nielsen uses MNIST (28×28 images). We use the 1,797 8×8 digits that ship with scikit-learn, so
# nothing downloads; `nnlib.data.load_mnist` reads Nielsen's `mnist.pkl.gz` in the same layout.
# A training example is a pair `(x, y)`: `x` a **column** of 64 pixels in [0, 1], `y` a one-hot
# column of 10. Held-out examples carry the plain label.
#
# There are three sets, each with one job: **training** to compute gradients, **validation** to
# choose `eta`, the epochs and the mini-batch size, and **test**, looked at once at the very end.
# A number we tuned on is no longer an honest estimate of how the network does on new digits.

# %%
training, validation, test = load_digits()
x, y = training[0]
print(f"{len(training)} training, {len(validation)} validation, {len(test)} test examples")
print("x:", x.shape, " y:", y.shape, " y as a list:", y.ravel().astype(int).tolist())
print("a validation example's label:", validation[0][1])

# %%
show_digits(training, n=20)
plt.show()

# %% [markdown]
# **What to notice:** the images are tiny and blurry; a person still reads most of them. That is
# the bar for the network.
#
# ## 2. The network, its shapes, and Nielsen's numbering
#
# `Network([64, 30, 10])`: 64 inputs, a hidden layer of 30 sigmoid neurons, 10 outputs. Nielsen
# numbers the layers from 1 (the inputs) to $L$ (here 3), and $W^l, b^l$ are the weights and
# biases *into* layer $l$:
#
# $$z^l = W^l a^{l-1} + b^l, \qquad a^l = \sigma(z^l).$$
#
# The input layer has no weights, so Python's `weights[0]` is his $W^2$ and `weights[l-2]` is
# $W^l$. Each has one row per neuron of its layer and one column per neuron of the layer before.

# %%
net = Network([64, 30, 10], seed=0)
for i, (w, b) in enumerate(zip(net.weights, net.biases)):
    print(f"weights[{i}] = W^{i + 2}: {w.shape}   biases[{i}] = b^{i + 2}: {b.shape}")
a = x
for w, b in zip(net.weights, net.biases):
    a = sigmoid(w @ a + b)  # a^l = sigma(W^l a^(l-1) + b^l)
print("same output as net.feedforward(x):", np.allclose(a, net.feedforward(x)))

# %% [markdown]
# Before any training, what does it answer? There are 10 classes, so guessing gives 0.1.

# %%
X_val = np.hstack([x_v for x_v, _ in validation])
labels = np.array([label for _, label in validation])
out = net.feedforward(X_val)  # (10, 300): one column per validation image
print("answer (argmax):", out[:, :12].argmax(axis=0))
print("label          :", labels[:12])
print("mean output of each neuron:", out.mean(axis=1).round(2))
print(f"share of answers that are 9: {np.mean(out.argmax(axis=0) == 9):.2f}   "
      f"accuracy: {np.mean(out.argmax(axis=0) == labels):.2f}   "
      f"(always answering 9 would score {np.mean(labels == 9):.2f})")
print(f"outputs above 0.95 or below 0.05 (saturated): {np.mean((out > 0.95) | (out < 0.05)):.2f}")

# %% [markdown]
# **What to notice:** the untrained network is not guessing at random. Outputs 2 and 9 sit near 1
# for almost every image (their mean outputs are 0.98 and 1.00), so it answers 9 (or 2) to most
# images, and its accuracy is about what always saying 9 would get. The weights are drawn from $N(0, 1)$, so $z = W a + b$ sums dozens of such terms and is
# often large; the sigmoid then *saturates* near 0 or 1, where its slope $\sigma'(z)$ is almost 0.
# Remember that: $\sigma'$ appears in every backprop equation, so saturated neurons learn slowly.
#
# ## 3. Backpropagation, derived
#
# ### 3.1 One neuron per layer, by hand
#
# Take the smallest network with a hidden layer: one input $x$, one hidden neuron, one output,
# weights $w^2, w^3$, biases $b^2, b^3$, cost $C = \tfrac12 (a^3 - y)^2$. Forward:
# $z^2 = w^2 x + b^2$, $a^2 = \sigma(z^2)$, $z^3 = w^3 a^2 + b^3$, $a^3 = \sigma(z^3)$.
#
# The chain rule walks back through that list. Call $\delta^l = \partial C/\partial z^l$:
#
# - $\delta^3 = \frac{\partial C}{\partial a^3}\frac{\partial a^3}{\partial z^3} = (a^3 - y)\,\sigma'(z^3)$;
# - $\partial C/\partial b^3 = \delta^3 \cdot \partial z^3/\partial b^3 = \delta^3$, and $\partial C/\partial w^3 = \delta^3 a^2$;
# - $\delta^2 = \delta^3 \cdot \frac{\partial z^3}{\partial a^2}\frac{\partial a^2}{\partial z^2} = w^3 \delta^3\, \sigma'(z^2)$;
# - $\partial C/\partial b^2 = \delta^2$, and $\partial C/\partial w^2 = \delta^2 x$.
#
# Here are the numbers, one line each:

# %%
x1, y1 = 1.5, 1.0
w2, b2, w3, b3 = 0.8, -0.5, -1.2, 0.3
z2 = w2 * x1 + b2
a2 = sigmoid(z2)
z3 = w3 * a2 + b3
a3 = sigmoid(z3)
print(f"forward: z2 = {z2:.4f}  a2 = {a2:.4f}  z3 = {z3:.4f}  a3 = {a3:.4f}  C = {0.5 * (a3 - y1) ** 2:.4f}")
d3 = (a3 - y1) * sigmoid_prime(z3)
print(f"delta3 = (a3 - y) * sigma'(z3) = {a3 - y1:.4f} * {sigmoid_prime(z3):.4f} = {d3:.4f}")
print(f"dC/db3 = delta3 = {d3:.4f}    dC/dw3 = delta3 * a2 = {d3 * a2:.4f}")
d2 = w3 * d3 * sigmoid_prime(z2)
print(f"delta2 = w3 * delta3 * sigma'(z2) = {w3:.1f} * {d3:.4f} * {sigmoid_prime(z2):.4f} = {d2:.4f}")
print(f"dC/db2 = delta2 = {d2:.4f}    dC/dw2 = delta2 * x = {d2 * x1:.4f}")

tiny = Network([1, 1, 1])
tiny.weights, tiny.biases = [np.array([[w2]]), np.array([[w3]])], [np.array([[b2]]), np.array([[b3]])]
nb_tiny, nw_tiny = tiny.backprop(np.array([[x1]]), np.array([[y1]]))
print("nnlib's backprop:  dC/dw2, dC/dw3 =", [round(float(g[0, 0]), 4) for g in nw_tiny],
      "  dC/db2, dC/db3 =", [round(float(g[0, 0]), 4) for g in nb_tiny])

# %% [markdown]
# **What to notice:** every step back multiplies by a weight and by a $\sigma'$, which is never
# above 0.25: $\delta^2$ is about a quarter of $\delta^3$ here. nnlib's `backprop` gives the
# same four numbers.
#
# ### 3.2 The same four steps for whole layers: BP1–BP4
#
# With many neurons per layer, $\delta^l$ becomes a column, a product with the weight becomes a
# matrix product, and "times $\sigma'$" becomes the elementwise product $\odot$. The four lines
# above turn into Nielsen's four equations (chapter 2), in his numbering:
#
# | | scalar network | layers (Nielsen) | in code (`nnlib.sgd.backprop`) |
# |---|---|---|---|
# | BP1 | $\delta^3 = (a^3-y)\,\sigma'(z^3)$ | $\delta^L = (a^L - y) \odot \sigma'(z^L)$ | `(a - y) * sigmoid_prime(z)` |
# | BP2 | $\delta^2 = w^3\delta^3\,\sigma'(z^2)$ | $\delta^l = ((W^{l+1})^\top \delta^{l+1}) \odot \sigma'(z^l)$ | `weights[l-1].T @ delta * sigmoid_prime(z)` |
# | BP3 | $\partial C/\partial b^l = \delta^l$ | $\partial C/\partial b^l_j = \delta^l_j$ | `nabla_b = delta` |
# | BP4 | $\partial C/\partial w^l = \delta^l a^{l-1}$ | $\partial C/\partial W^l_{jk} = a^{l-1}_k \delta^l_j$, i.e. $\delta^l (a^{l-1})^\top$ | `nabla_w = delta @ a_prev.T` |
#
# The transpose in BP2 is the scalar $w^3$ run backwards: $W^{l+1}$ maps layer $l$ forward, so
# $(W^{l+1})^\top$ carries layer $l+1$'s errors back, each along the weight that caused it. In
# code, $W^{l+1}$ is `weights[l-1]`, the matrix *after* layer $l$. nnlib's `backprop` runs the
# four equations for one example; you will write them yourself in section 5.

# %%
nb_lib, nw_lib = net.backprop(x, y)
print("shapes of nabla_w:", [g.shape for g in nw_lib], "  weights:", [w.shape for w in net.weights])
print("shapes of nabla_b:", [g.shape for g in nb_lib], "  biases: ", [b.shape for b in net.biases])

# %% [markdown]
# **What to notice:** each gradient has exactly the shape of the parameter it belongs to, so
# the update line can subtract `nw` from `w` element by element.
#
# ### 3.3 Is the gradient right? Two independent checks
#
# **Finite differences.** Nudge one weight by $\pm\epsilon$ and watch the cost:
# $\partial C/\partial w \approx \frac{C(w+\epsilon) - C(w-\epsilon)}{2\epsilon}$. Two errors
# compete. *Truncation*: the $\epsilon^2$ terms of the Taylor series cancel, and the formula
# drops the $\epsilon^3$ term, so its error shrinks like $\epsilon^2$. *Rounding*: each $C$ is stored with a relative error of about
# $u \approx 1.1\times10^{-16}$, and dividing the difference by $2\epsilon$ magnifies that to
# about $u\,C/\epsilon$, which *grows* as $\epsilon$ shrinks. Sweep $\epsilon$ and both show:

# %%
def cost_one(net, x, y):
    return 0.5 * float(np.sum((net.feedforward(x) - y) ** 2))


def finite_difference(net, l, i, j, eps):
    w, old = net.weights[l], net.weights[l][i, j]
    w[i, j] = old + eps
    up = cost_one(net, x, y)
    w[i, j] = old - eps
    down = cost_one(net, x, y)
    w[i, j] = old
    return (up - down) / (2 * eps)


i, j = np.unravel_index(np.abs(nw_lib[0]).argmax(), nw_lib[0].shape)  # a weight that matters
exact = nw_lib[0][i, j]
epsilons = 10.0 ** -np.arange(1, 13)
rel_err = np.array([abs(finite_difference(net, 0, i, j, e) - exact) / abs(exact) for e in epsilons])
plot_eps_sweep(epsilons, rel_err, title=f"dC/dW^2[{i},{j}] by central differences")
plt.show()
best = epsilons[rel_err.argmin()]
print(f"smallest error at eps = {best:.0e}: between 1e{int(np.floor(np.log10(rel_err.min())))} "
      f"and 1e{int(np.floor(np.log10(rel_err.min()))) + 1}")
print(f"rounding estimate u*C/(eps*|dC/dw|) at eps = 1e-6: {1.1e-16 * cost_one(net, x, y) / (1e-6 * abs(exact)):.0e}")

# %% [markdown]
# **What to notice:** the V. Right of the minimum the error falls with $\epsilon^2$, along the
# dashed guide (truncation); left of it, it *rises* roughly like $1/\epsilon$, along the dotted
# one (rounding). At $\epsilon = 10^{-6}$, a common choice, you are already on the rounding side:
# the gap you see there is the machine's, not the formula's, and shrinking $\epsilon$ further
# makes it worse.
#
# **torch's autograd** on the very same numbers: copy the weights into tensors, run the same
# forward pass and cost, call `.backward()`, compare.

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
# **What to notice:** autograd agrees to rounding, because it *is* the chain rule, done by a
# machine: no $\epsilon$, so no V.
#
# ## 4. The update line, symbol by symbol
#
# Nielsen's equations (20) and (21) (chapter 1) average the gradient over a mini-batch of $m$
# examples $X_1 \dots X_m$ and step against it:
#
# $$w_k \to w_k - \frac{\eta}{m}\sum_j \frac{\partial C_{X_j}}{\partial w_k}, \qquad
#   b_l \to b_l - \frac{\eta}{m}\sum_j \frac{\partial C_{X_j}}{\partial b_l}$$
#
# ```python
# self.weights = [w-(eta/len(mini_batch))*nw for w, nw in zip(self.weights, nabla_w)]
# ```
#
# Term by term: `eta` is $\eta$, `len(mini_batch)` is $m$, `nw` is $\sum_j \partial C_{X_j}/\partial W$
# for one layer (backprop's `nabla_w`, summed over the examples), and `self.weights` is a Python
# list of matrices, one per layer, which `zip` pairs with the list `nabla_w`. Here is the first
# half of Nielsen's `update_mini_batch`, which builds that sum:

# %%
mini_batch = training[:10]
eta = 3.0
nabla_b = [np.zeros(b.shape) for b in net.biases]
nabla_w = [np.zeros(w.shape) for w in net.weights]
for x_i, y_i in mini_batch:
    delta_nabla_b, delta_nabla_w = net.backprop(x_i, y_i)
    nabla_b = [nb + dnb for nb, dnb in zip(nabla_b, delta_nabla_b)]
    nabla_w = [nw + dnw for nw, dnw in zip(nabla_w, delta_nabla_w)]

new_weights = [w - (eta / len(mini_batch)) * nw for w, nw in zip(net.weights, nabla_w)]
new_biases = [b - (eta / len(mini_batch)) * nb for b, nb in zip(net.biases, nabla_b)]
stepped = net.copy()
stepped.update_mini_batch(mini_batch, eta)  # nnlib's update_mini_batch: the same line
print("by hand == Network.update_mini_batch:",
      all(np.allclose(p, q) for p, q in zip(new_weights + new_biases, stepped.weights + stepped.biases)))
print(f"cost on this mini-batch: {net.total_cost(mini_batch):.4f} before, "
      f"{stepped.total_cost(mini_batch):.4f} after one step")
print(f"{len(training)} examples in mini-batches of 10: the last one has {len(training) % 10}")

# %% [markdown]
# **What to notice:** one step lowered the cost on the examples it saw. Seeing a *different*
# random mini-batch each step is what makes it *stochastic* gradient descent. `nabla_w` is a
# **sum**, so `/len(mini_batch)` makes it a mean, and `len(mini_batch)`, not the nominal batch
# size, is right for the last, shorter mini-batch. *Why* a mean rather than the sum is the
# experiment of section 7.
#
# ## 5. The whole mini-batch as one matrix
#
# The loop calls `backprop` once per example. nnlib's `backprop_matrix` puts the $m$ examples
# side by side as the **columns** of `X`, shape `(64, m)` (and `Y`, `(10, m)`), so every $z^l$
# and $\delta^l$ becomes a matrix with one column per example. BP1, BP2 and BP4 read exactly as
# before; `delta @ a_prev.T` even *sums* the $m$ outer products for free. BP3 does **not**:
# $\delta^l$ is now `(n, m)`, and the bias gradient must be summed over the batch axis. Forget it
# and nothing fails; the bias just quietly turns into a matrix:

# %%
X = np.hstack([x_i for x_i, _ in mini_batch])
Y = np.hstack([y_i for _, y_i in mini_batch])
A = net.feedforward(X)
delta = (A - Y) * A * (1 - A)  # BP1, with sigma'(z) = a(1 - a): shape (10, m)
print("X:", X.shape, " Y:", Y.shape, " delta^L:", delta.shape)
print("b - eta/m * delta                     ->", (net.biases[-1] - eta / 10 * delta).shape, " (wrong)")
print("b - eta/m * delta.sum(axis=1, keepdims) ->",
      (net.biases[-1] - eta / 10 * delta.sum(axis=1, keepdims=True)).shape)

# %% [markdown]
# **Exercise 1.** Write backprop for a whole mini-batch: `X` is `(n_in, m)`, `Y` is `(n_out, m)`,
# `weights[k]` is Nielsen's $W^{k+2}$. Return `(nabla_b, nabla_w)`, each a list with one array
# per layer, **summed** over the $m$ examples (what the loop above adds up). The checker compares
# layer by layer, from the output back, with nnlib's `backprop_matrix` and with torch's autograd,
# and names the equation (BP1–BP4) where yours first differs.

# %%
from nnlib.exercises.sgd_from_scratch import (
    check_backprop_matrix, check_cross_entropy_delta, check_parameter_count, check_sgd_update)


def backprop_matrix(weights, biases, X, Y):
    raise NotImplementedError


check_backprop_matrix(backprop_matrix)

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# def backprop_matrix(weights, biases, X, Y):
#     activations, zs, a = [X], [], X
#     for w, b in zip(weights, biases):
#         zs.append(w @ a + b)  # b (n, 1) broadcasts over the m columns
#         a = sigmoid(zs[-1])
#         activations.append(a)
#     nabla_b, nabla_w = [None] * len(weights), [None] * len(weights)
#     delta = (activations[-1] - Y) * sigmoid_prime(zs[-1])  # BP1
#     for k in range(len(weights) - 1, -1, -1):
#         if k < len(weights) - 1:
#             delta = (weights[k + 1].T @ delta) * sigmoid_prime(zs[k])  # BP2
#         nabla_b[k] = delta.sum(axis=1, keepdims=True)  # BP3, summed over the batch
#         nabla_w[k] = delta @ activations[k].T  # BP4, sums the m outer products
#     return nabla_b, nabla_w
# ```
# </details>
#
# The matrix form gives the same step as the loop, and it is faster: Python's per-call overhead
# is paid once per mini-batch instead of once per example (`benchmarks/sgd.py` measures it on an
# MNIST-sized epoch, side by side with the loop and with torch).

# %%
loop_net, matrix_net = net.copy(), net.copy()
loop_net.update_mini_batch(mini_batch, eta)
matrix_net.update_mini_batch_matrix(mini_batch, eta)
gap = max(np.abs(p - q).max() for p, q in zip(loop_net.weights + loop_net.biases,
                                               matrix_net.weights + matrix_net.biases))
print("loop and matrix give the same weights to within 1e-10:", gap < 1e-10)

# %% [markdown]
# ## 6. Training, measured on the validation set
#
# `Network.SGD(training_data, epochs, mini_batch_size, eta, test_data)` is Nielsen's loop: each
# epoch, shuffle, cut into mini-batches, take one step per mini-batch, then measure. Nielsen's
# `test_data` is just "the held-out set to measure on": while we are still choosing, we pass the
# **validation** set. The history starts at epoch 0, before the first step.

# %%
# NBVAL_IGNORE_OUTPUT
net = Network([64, 30, 10], seed=0)
history = net.SGD(training, epochs=30, mini_batch_size=10, eta=3.0, test_data=validation)

# %%
for epoch in [0, 1, 5, 30]:
    print(f"epoch {epoch:2d}: validation accuracy {history.accuracy[epoch]:.3f}   "
          f"training cost {history.cost[epoch]:.4f}")
plot_history(history)
plt.show()

# %% [markdown]
# **What to notice:** epoch 0 is the untrained network of section 2. Most of the learning
# happens in the first few epochs; after that the cost keeps falling slowly while the accuracy
# flattens out.
#
# ## 7. Why divide by `len(mini_batch)`? An experiment
#
# First the learning rate alone: the same network from the same start, 10 epochs on 600
# examples, five values of `eta`, measured on validation.

# %%
fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
final = {}
for eta_try in [0.03, 0.3, 3.0, 30.0, 300.0]:
    h = Network([64, 30, 10], seed=0).SGD(training[:600], 10, 10, eta_try, test_data=validation,
                                          progress=False)
    plot_history(h, axes, label=f"eta={eta_try:g}")
    final[eta_try] = h.accuracy[-1]
plt.show()
print("validation accuracy after 10 epochs:", {k: round(v, 3) for k, v in final.items()})

# %% [markdown]
# **What to notice:** too small an `eta` barely moves in 10 epochs. Too large ones overshoot in
# the first steps and push the sigmoids into saturation, where $\sigma'(z) \approx 0$: the cost
# goes flat and learning stops. In between, learning is fast and steady.
#
# Now the question this section is named for: why divide by `len(mini_batch)`? Without the division the step is `eta * nabla_w`, and
# `nabla_w` is a sum of $m$ gradients, so it grows with $m$. Nielsen remarks (chapter 1) that
# dropping the $1/m$ changes nothing essential: it only rescales $\eta$. Here it is exactly:

# %%
summed, mean = Network([64, 30, 10], seed=0), Network([64, 30, 10], seed=0)
summed.SGD(training[:600], 1, 20, 0.15, progress=False, average=False)  # w - eta * sum
mean.SGD(training[:600], 1, 20, 0.15 * 20, progress=False)              # w - (eta*m)/m * sum
print("sum with eta=0.15 == mean with eta=0.15*20:",
      all(np.allclose(p, q) for p, q in zip(summed.weights, mean.weights)))

# %% [markdown]
# So with the sum, a good `eta` for one mini-batch size is a different `eta` for another. The
# grid below trains a fresh network for every pair of `eta` and mini-batch size `m` (about 150
# steps each, so every `m` gets about the same number of updates; 48 runs) and shows validation accuracy.

# %%
etas, batch_sizes = [0.01, 0.03, 0.1, 0.3, 1, 3, 10, 30], [4, 16, 64]
grids = {average: accuracy_grid(training[:600], validation, etas, batch_sizes, steps=150,
                                average=average) for average in (True, False)}
fig, axes = plt.subplots(1, 2, figsize=(11, 2.8))
plot_accuracy_grid(grids[True], etas, batch_sizes, axes[0], "mean: w - eta/m * sum")
plot_accuracy_grid(grids[False], etas, batch_sizes, axes[1], "sum: w - eta * sum")
plt.show()
for average, grid in grids.items():
    for m, row in zip(batch_sizes, grid):
        good = [e for e, acc in zip(etas, row) if acc >= 0.5]
        print(f"{'mean' if average else 'sum ':4s} m={m:2d}: accuracy >= 0.5 for eta in {good}")

# %% [markdown]
# **What to notice:** read each heatmap's bright band from row to row. With the mean (left) the
# band of good `eta` stays in the same columns for every `m`. With the sum (right) it slides left
# as `m` grows: each 4× larger batch makes every step 4× longer, so the `eta` that worked now
# overshoots and a 4× smaller one is needed. That is why Nielsen divides: **`eta` keeps its
# meaning, a step along the mean gradient, whatever the mini-batch size.**
#
# Try it yourself: untick *divide by m* and change the mini-batch size. Each move retrains from
# the same start, measured on the validation set, and keeps the previous run faint.
#
# *(The widget needs a running kernel; on GitHub you see only this text.)*

# %%
# NBVAL_IGNORE_OUTPUT
# (ignored by the notebook tests: each front end captures a widget's plot differently)
from nnlib.widgets import LearningRateExplorer

LearningRateExplorer(training, validation)

# %% [markdown]
# The choices rest on validation only: `eta = 3.0` was the best of the sweep and sits inside the
# good band for every `m`; 30 epochs and mini-batches of 10 gave the curves of section 6. Only
# now do we look at the test set, once:

# %%
print(f"test accuracy of the network of section 6: {net.evaluate(test) / len(test):.3f}")

# %% [markdown]
# ## 8. torch: the same step, and a trap
#
# In torch you write the forward pass and a loss; autograd gives the gradient and
# `torch.optim.SGD(params, lr=eta)` does `p -= lr * p.grad`. The optimiser has no
# `/ len(mini_batch)`, so the mean lives in the loss. With Nielsen's cost,
# `0.5 * ((a - Y) ** 2).sum() / m`, torch takes exactly nnlib's step:

# %%
start_net = Network([64, 30, 10], seed=1)
torch_weights, torch_biases = torch_step(start_net, mini_batch, eta)
ours = start_net.copy()
ours.update_mini_batch(mini_batch, eta)
gap = max(np.abs(p - q).max() for p, q in zip(ours.weights + ours.biases, torch_weights + torch_biases))
print("nnlib and torch.optim.SGD give the same step to within 1e-12:", gap < 1e-12)

# %% [markdown]
# The trap: the loss people reach for is `F.mse_loss(a, Y)`. It averages over **all** $m \times 10$
# numbers, not over the $m$ examples, and has no $\tfrac12$. `reduction="sum"` removes the mean
# altogether. Autograd's gradient for each, divided by nnlib's summed `nabla` (same weights, same
# mini-batch of 10):

# %%
nabla_b, nabla_w = start_net.backprop_matrix(X, Y)
nielsen_step = eta / len(mini_batch)  # Nielsen's step per unit of summed gradient
for loss, code in [("nielsen", "0.5 * ((a - Y)**2).sum() / m"), ("mse_mean", "F.mse_loss(a, Y)"),
                   ("mse_sum", 'F.mse_loss(a, Y, reduction="sum")')]:
    grad_b, grad_w = torch_gradients(start_net, mini_batch, loss)
    factor = float(np.vdot(grad_w[1], nabla_w[1]) / np.vdot(nabla_w[1], nabla_w[1]))
    same = all(np.allclose(g, factor * n) for g, n in zip(grad_b + grad_w, nabla_b + nabla_w))
    print(f"{code:34s} grad = {factor:.3f} x nabla (every entry: {same});  "
          f"step with lr=eta: {eta * factor / nielsen_step:g} x Nielsen's")

# %% [markdown]
# **What to notice:** `F.mse_loss` gives $2/(10m)$ of the summed gradient, a step 5× shorter
# than Nielsen's with the same `eta` (the missing ½ doubles it, averaging over the 10 outputs
# too divides it by 10); `reduction="sum"` gives $2\times$ the sum, a step $2m$ times longer, $m$ of it from the
# lost mean. Neither is wrong, but each needs its own learning rate, and `reduction="sum"` needs
# a new one whenever the batch size changes, as the right heatmap showed.
#
# ## 9. More exercises
#
# Each checker says right or not yet; the solution is hidden below each one. Try first.
#
# **Exercise 2.** Write the update line for one layer: given `w`, its summed gradient
# `nabla_w`, `eta` and the mini-batch size `m`, return the new `w`.

# %%
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
# **Exercise 3.** How many numbers (weights and biases) does `Network(sizes)` have? Write it for
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
# **Exercise 4.** With the cross-entropy cost $C = -\sum_j [y_j \ln a_j + (1-y_j)\ln(1-a_j)]$
# instead of the quadratic one, what is the output error $\delta^L$ (BP1)? Return it from
# `a`, `y` and `z`. (Nielsen, chapter 3: this cost does not slow down on saturated outputs, like
# the ones of section 2.)

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
# gradient over a random handful of examples, where the gradient comes from four equations of
# chain rule. The mean is what lets one `eta` work for any mini-batch size. Every network in this
# series, the Llama of notebooks 03 and 04 included, was trained the same way: a gradient from a
# mini-batch, then a step against it (though with a smarter optimiser, such as Adam, in place of
# this plain step, and torch's autograd doing the backprop).
# Next: **02 · spaCy pipelines**, where trained networks become tools you load and use.
#
# ### まとめ（日本語）
#
# - `nabla_w`・`nabla_b` は、ミニバッチ内の各例について誤差逆伝播法で求めた勾配の**和**です。形は
#   `weights`・`biases` と同じなので、要素ごとに引き算できます。
# - 誤差逆伝播法は連鎖律そのものです。1-1-1 の小さなネットワークで手計算し、Nielsen の番号付けの
#   BP1〜BP4 に一般化しました。ミニバッチを行列で扱うときは、バイアスの勾配をバッチ方向に足し合わせる
#   必要があります。
# - 勾配は有限差分と torch の自動微分で確かめました。有限差分の誤差は ε が大きいと打ち切り誤差、
#   小さいと丸め誤差で増え、V 字になります。
# - `len(mini_batch)` で割ると勾配が**平均**になり、`eta` の意味がミニバッチの大きさに依存しません。
#   割らない（和のまま）と、良い `eta` が 1/m でずれていきます。割らないことは `eta` を m 倍し直すのと同じです。
# - PyTorch の `F.mse_loss` は m×10 個の要素で平均し ½ もないため、同じ `eta` でも歩幅が変わります。
#   `reduction="sum"` では歩幅が m に比例して大きくなります。
# - `eta` などは検証データで選び、テストデータは最後に一度だけ評価します。
