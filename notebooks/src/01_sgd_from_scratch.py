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
# His `network.py` is Python 2 (`xrange`, `print "..."` statements); `nnlib.sgd.Network`, used
# below, is its Python 3 twin, with `@` where he writes `np.dot`.
#
# By the end of this notebook you will be able to:
#
# 1. say what every symbol in those lines is (`w`, `nw`, `nabla_w`, `nabla_b`, `eta`,
#    `mini_batch`), why the step *subtracts*, and what `eta` does, on a cost of one weight you
#    nudge yourself (section 1);
# 2. show *by experiment* why the step is divided by `len(mini_batch)` (section 1.3, on the same
#    one weight, about a quarter hour in), and predict how the good learning rates move on a real
#    network when it is not (section 7);
# 3. say where `nabla_w` comes from: backpropagation, derived by hand on a network of one neuron
#    per layer and checked by nudging a weight (the optional parts name Nielsen's four equations
#    BP1–BP4, check them, and do a whole mini-batch as matrix products);
# 4. train on handwritten digits, choose `eta` on a validation set and report the test set once.
#
# **Time:** the core path, the parts not marked optional, adds up to about 64 minutes
# (this introduction 3, section 1 16, section 2 6, section 3 5, section 4.1 13, section 6 4,
# section 7 with Exercise 3 14, section 7.2 1, the closing summary 2). The parts marked
# *(optional, N min)* add about 111 minutes more: Exercise 1 (section 1.4) 12, sections 1.5 5,
# 2.1 4, 4.2 11, 4.3 8, 4.4 11 and 5 8, Exercise 2 (section 5.1) 18, section 7.1 10, section 8
# 10, section 9 (Exercises 4 and 5) 12, and what `nnlib.sgd` leaves out 2. These minutes are
# estimates for a first reading, not a measurement. The code is in `nnlib.sgd` (same names as
# Nielsen's); this notebook shows the lines that teach.

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
from nnlib.run_report import RunClock

_clock = RunClock()  # the last cell reports how long the whole run took, and its peak memory
import inspect  # noqa: E402

import matplotlib.pyplot as plt
import numpy as np
import torch

from nnlib.data import load_digits
from nnlib.exercises.sgd_from_scratch import (
    check_backprop_matrix, check_cross_entropy_delta, check_largest_stable_eta, check_parameter_count,
    check_sum_band)
from nnlib.plots import plot_accuracy_grid, plot_eps_sweep, plot_history, show_digits
from nnlib.sgd import (
    Network, accuracy_grid, sigmoid, sigmoid_prime, torch_gradients, torch_step, train_for_steps)

np.set_printoptions(precision=4, suppress=True)
torch.manual_seed(0)
rng = np.random.default_rng(0)

# %% [markdown]
# ## 1. Gradient descent on one weight (16 min)
#
# Before any network: a model with a single weight $w$ that predicts $w\,x$, and a mini-batch of
# eight points $(x_j, y_j)$. Each point has its own cost $C_j(w) = \tfrac12 (w x_j - y_j)^2$, and,
# as in Nielsen's chapter 1, the cost $C$ is their **mean**. Everything in the update line already
# happens here.

# %%
rng1 = np.random.default_rng(1)
xs = rng1.uniform(0.5, 1.5, 8)
ys = 2.0 * xs + rng1.normal(0, 0.3, 8)  # roughly y = 2x, with noise


def cost(w):
    """C(w): the mean over the mini-batch of 1/2 (w x_j - y_j)^2."""
    return np.mean(0.5 * (w * xs - ys) ** 2)


def slope(w):
    """dC/dw: the mean over the mini-batch of (w x_j - y_j) x_j (chain rule on each C_j)."""
    return np.mean((w * xs - ys) * xs)


w_best = np.dot(xs, ys) / np.dot(xs, xs)  # where the slope is 0
print("x:", xs.round(2))
print("y:", ys.round(2))
print(f"the lowest cost is at w* = {w_best:.3f}")
for w_at in [0.5, 3.5]:
    print(f"at w = {w_at}: C = {cost(w_at):.3f}, slope dC/dw = {slope(w_at):+.3f}")

# %%
w_grid = np.linspace(-1, 5, 200)
fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(w_grid, [cost(v) for v in w_grid], label="C(w)")
for w_at in [0.5, 3.5]:
    near = np.linspace(w_at - 0.7, w_at + 0.7, 2)
    ax.plot(near, cost(w_at) + slope(w_at) * (near - w_at), "--", label=f"slope at w = {w_at}")
ax.axvline(w_best, color="grey", lw=0.8)
ax.set(xlabel="w", ylabel="cost C(w)", ylim=(0, 6))
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# **What to notice:** left of $w^*$ the slope is negative, right of it positive: it always
# points *uphill*.
#
# ### 1.1 What ∇ is, and why the step subtracts
#
# $\nabla$ ("nabla") collects the partial derivatives of the cost, one per parameter:
# $\nabla C = (\partial C/\partial w_1, \partial C/\partial w_2, \dots)$; with one weight it is the
# slope $dC/dw$. Nielsen's `nabla_w` holds one such number per weight, in the weights' shapes (the
# `n` of `nw` and `nb` is for nabla); section 1.3 shows which cost it is the gradient of.
#
# For a small change $\Delta w$ the cost changes by about $\Delta C \approx \frac{dC}{dw}\,\Delta w$.
# Gradient descent **chooses** $\Delta w = -\eta\, \frac{dC}{dw}$ with a small $\eta > 0$, so
#
# $$\Delta C \approx -\eta \left(\frac{dC}{dw}\right)^2 \le 0 :$$
#
# to first order the cost goes down, whatever the sign of the slope (with many weights, Nielsen's
# $\Delta C \approx -\eta\,\|\nabla C\|^2$). $\nabla C$ points uphill, so we step the other way.
# Check the approximation, and what a plus sign would do:

# %%
w_now = 0.5
g = slope(w_now)
for eta in [0.01, 0.1, 1.0]:
    down = cost(w_now - eta * g) - cost(w_now)
    up = cost(w_now + eta * g) - cost(w_now)
    print(f"eta = {eta:<4}: w - eta*slope changes C by {down:+.4f} (predicted -eta*slope^2 = "
          f"{-eta * g ** 2:+.4f});   w + eta*slope changes it by {up:+.4f}")

# %% [markdown]
# **What to notice:** for small `eta` the prediction is close; for larger `eta` the cost falls by
# less than predicted, because the slope changes along the way. The plus sign climbs.
#
# ### 1.2 Nudge it yourself: what `eta` does
#
# Ten steps $w \to w - \eta\,dC/dw$ from $w = 0$. **Change `eta` and run the cell again**: try
# 0.1, then 1.7.

# %%
eta = 0.5  # try 0.1, then 1.7
w = 0.0
path = [w]
for step in range(10):
    w = w - eta * slope(w)
    path.append(w)
print("w after each step:", np.round(path, 3))
print(f"distance to w*: {abs(path[0] - w_best):.3f} at the start, {abs(w - w_best):.3g} after 10 steps")
w_wide = np.linspace(min(-2.5, min(path)), max(6.5, max(path)), 200)  # wide enough for eta = 1.7
fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(w_wide, [cost(v) for v in w_wide], color="lightgrey")
ax.plot(path, [cost(v) for v in path], "o-", ms=4)
top = max(11, 1.1 * max(cost(v) for v in path))  # the axes grow with a diverging path
ax.set(xlabel="w", ylabel="cost C(w)", ylim=(0, top), title=f"10 steps with eta = {eta}")
plt.show()

# %% [markdown]
# The same ten steps for several values at once:

# %%
for eta_try in [0.1, 0.5, 0.8, 1.5, 1.7]:
    w = 0.0
    for step in range(10):
        w = w - eta_try * slope(w)
    gap = abs(w - w_best)
    shown = f"{gap:.3g}" if gap >= 1e-12 else "below 1e-12 (rounding level)"
    print(f"eta = {eta_try}: distance to w* after 10 steps = {shown}")

# %% [markdown]
# **What to notice:** a small `eta` creeps, a middle one arrives, 1.5 overshoots $w^*$ on every
# step yet still closes in, and 1.7 overshoots by more each time: the distance *grows*. `eta` is
# a step size, with a limit: descent converges for every `eta` below it and diverges above it
# (the optional Exercise 1, section 1.4, derives it).
#
# ### 1.3 `nabla_w`, `eta` and `len(mini_batch)`
#
# Nielsen's code does not compute the mean slope directly: `update_mini_batch` calls `backprop`
# once per example and **adds** the results, so `nabla_w` is the **sum**
# $\sum_j \partial C_j/\partial w$ over the mini-batch. Here is his step, `w-(eta/len(mini_batch))*nw`
# character for character, on the eight points as one mini-batch (with one weight, `nw` is one
# number):

# %%
mini_batch = list(zip(xs, ys))  # eight (x, y) pairs, the layout of Nielsen's mini_batch
w, eta = 0.0, 0.5
nw = 0.0
for x_j, y_j in mini_batch:
    nw = nw + (w * x_j - y_j) * x_j  # dC_j/dw of one example, added up as update_mini_batch does
w_new = w-(eta/len(mini_batch))*nw  # the seed line, for one weight
print(f"nw = {nw:.3f} (a sum of {len(mini_batch)} gradients),  w: {w} -> {w_new:.3f}")
print("the same as one step along the mean slope, w - eta * slope(w):",
      bool(np.isclose(w_new, w - eta * slope(w))))

# %% [markdown]
# **Predict first:** drop the `/len(mini_batch)` and keep `eta = 0.5`, so the step is
# `w - eta*nw`. Do ten steps from $w = 0$ still reach $w^*$? Write your guess down, then run:

# %%
def ten_steps(step_size):
    """w after ten steps w -> w - step_size * nw from w = 0, nw summed over the mini-batch."""
    w = 0.0
    for _ in range(10):
        nw = sum((w * x_j - y_j) * x_j for x_j, y_j in mini_batch)
        w = w - step_size * nw
    return w


m_8 = len(mini_batch)
for label, eta_used, step_size in [("mean: w - (eta/len(mini_batch))*nw", eta, eta / m_8),
                                   ("sum:  w - eta*nw", eta, eta),
                                   ("mean, eta times len(mini_batch)", m_8 * eta, m_8 * eta / m_8)]:
    print(f"{label:35s} eta = {eta_used:<3g}: w after 10 steps = {ten_steps(step_size):.4g}")

# %% [markdown]
# **What to notice:** the mean lands on $w^*$; the sum, with the same `eta`, is thrown off by
# millions. The sum of 8 gradients is 8 times their mean, so the summed step is the mean's step
# with `eta` 8 times larger, 4, far beyond the 1.7 that already diverged in 1.2 (the third line:
# the very same path). Dividing by `len(mini_batch)` makes `eta` a step along the *mean* slope,
# whatever the mini-batch size; without it, every mini-batch size needs its own `eta` (section 7
# shows it on a real network).
#
# So, term by term:
#
# ```python
# w - (eta/len(mini_batch)) * nw
# ```
#
# - `nw`: one layer's `nabla_w`, the sum over the mini-batch of $\partial C_j/\partial w$, one
#   number per weight (`backprop(x, y)` returns one example's gradient, `update_mini_batch` adds
#   them up), i.e. $m\,\partial C/\partial w$ for the mean cost $C$ over $m$ examples;
# - `/len(mini_batch)`: turns the sum into the mean;
# - `eta`: the step size along that mean slope, the $\eta$ you just nudged;
# - the minus: step downhill.
#
# This is Nielsen's equation (20) (chapter 1), and (21) is the same for the biases:
# $w_k \to w_k - \frac{\eta}{m}\sum_j \partial C_{X_j}/\partial w_k$.
#
# Taking a *different* random mini-batch each step is what makes the descent *stochastic*:
# Nielsen's `SGD` shuffles the training set, cuts it into mini-batches of `mini_batch_size`, and
# takes one step per mini-batch; one such pass over the training set is an **epoch**. When the set
# does not divide evenly, the last mini-batch is shorter, and `len(mini_batch)` (not the nominal
# `mini_batch_size`) still averages it right.
#
# ### 1.4 Exercise 1: the limit on `eta` (optional, 12 min)
#
# On this one-weight cost the slope $dC/dw$ is a straight line in $w$, so its own derivative, the
# **second derivative** $c = C''(w)$, is one number, the same for every $w$. It is the cost's
# **curvature**: how fast the slope changes as $w$ moves, i.e. how sharply the parabola bends. One
# step then moves $w - w^* \to (1 - \eta\,c)\,(w - w^*)$. Derive the limit on `eta`, the value
# such that descent converges for every `eta` below it (and not above), for the mean update
# (`average=True`) and for the summed one, `w - eta * nabla_w` (`average=False`), given the inputs
# `xs` of a mini-batch. The checker then runs descent just below and just above your answer.

# %%
def largest_stable_eta(xs, average):
    raise NotImplementedError


check_largest_stable_eta(largest_stable_eta)

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# def largest_stable_eta(xs, average):
#     curvature = np.mean(xs ** 2) if average else np.sum(xs ** 2)
#     return 2 / curvature
# ```
# $C_j'' = x_j^2$, so the mean cost has curvature $\overline{x^2}$ and the summed one
# $\sum_j x_j^2 = m\,\overline{x^2}$. The factor $1 - \eta c$ must stay in $(-1, 1)$, so descent
# converges exactly for $\eta < 2/c$: at $\eta = 2/c$ the factor is $-1$ and $w$ jumps between two
# points forever, so $2/c$ is a bound that the converging values approach, not one of them. At
# $\eta = 1/c$ one step lands exactly on $w^*$. The sum's limit is $m$ times smaller: the bigger
# the mini-batch, the smaller the `eta` it tolerates.
# </details>
#
# Your limit for this notebook's eight points, next to the values you tried in 1.2:

# %%
try:
    limit_mean, limit_sum = largest_stable_eta(xs, True), largest_stable_eta(xs, False)
    print(f"your limits: mean update {limit_mean:.3f}, summed update (m = {len(xs)}) {limit_sum:.3f}")
    for eta_try in [0.1, 0.5, 0.8, 1.5, 1.7]:
        print(f"eta = {eta_try}: {'below' if eta_try < limit_mean else 'above'} your mean-update limit")
except NotImplementedError:
    print("Attempt Exercise 1 first: this cell then puts your limit next to the values of 1.2.")

# %% [markdown]
# ### 1.5 A mini-batch's mean is a noisy estimate (optional, 5 min)
#
# The sum grows with the mini-batch; the mean does not. Here, at $w = 0$, for mini-batches of
# growing size drawn the same way as the eight points, 200 mini-batches of each size. The slope
# of the cost over *all* such data (the infinitely large mini-batch) is known exactly here: at
# $w = 0$ it is $-\mathbb{E}[x\,y] = -2\,\mathbb{E}[x^2]$, with $\mathbb{E}[x^2] = 13/12$ for $x$
# uniform on $[0.5, 1.5]$:

# %%
rng13 = np.random.default_rng(13)
print(f"true slope at w = 0: {-2 * 13 / 12:.3f}")
for m in [4, 16, 64, 256]:
    x_m = rng13.uniform(0.5, 1.5, (200, m))  # 200 mini-batches of m points, one per row
    y_m = 2.0 * x_m + rng13.normal(0, 0.3, (200, m))
    sums = np.sum((0.0 * x_m - y_m) * x_m, axis=1)  # nabla_w of each: what the loop adds up
    means = sums / m
    print(f"m = {m:3d}: nabla_w (sum) averages {sums.mean():8.2f};   nabla_w / m (mean) "
          f"averages {means.mean():.3f}, spread (std) over the 200 draws {means.std():.3f}")

# %% [markdown]
# **What to notice:** the sum grows in proportion to $m$. Divided by $m$ it is the mean, which
# stays the same size: on average it is the true slope for every $m$, and its spread from one
# mini-batch to the next roughly halves each time $m$ grows 4× (it falls like $1/\sqrt{m}$). One
# mini-batch's mean is an *estimate* of the slope of the cost over all the data, and a small
# mini-batch gives a noisier one.

# %% [markdown]
# ## 2. The digits and the network (6 min)
#
# Nielsen uses MNIST (28×28 images); we use the small 8×8 digits that ship with scikit-learn, so
# nothing downloads (`nnlib.data.load_mnist` reads Nielsen's `mnist.pkl.gz` in the same layout).
# A training example is a pair `(x, y)`: `x` a **column** of 64 pixels in [0, 1], `y` a one-hot
# column of 10. Held-out examples carry the plain label.
#
# Three sets, one job each: **training** computes gradients, **validation** chooses settings (here
# `eta`, section 7; the 30 epochs and mini-batches of 10 we take from Nielsen), and **test** is
# looked at once, at the very end: a number we tuned on is no longer an honest estimate of how
# the network does on new digits.

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
# **What to notice:** the images are tiny and blurry; a person still reads most of them.
#
# `Network([64, 30, 10])`: 64 inputs, a hidden layer of 30 sigmoid neurons, 10 outputs. A sigmoid
# neuron outputs $\sigma(z) = 1/(1 + e^{-z})$, a number between 0 and 1, of its weighted input
# plus bias $z$. Nielsen numbers the layers from 1 (the inputs) to $L$ (here 3), and $W^l, b^l$
# are the weights and biases *into* layer $l$:
#
# $$z^l = W^l a^{l-1} + b^l, \qquad a^l = \sigma(z^l), \qquad a^1 = x.$$
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
# ### 2.1 Before training: a network that does not guess at random (optional, 4 min)
#
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
# images, and its accuracy is about what always saying 9 would get. The weights are drawn from
# $N(0, 1)$, so $z = W a + b$ sums dozens of such terms and is often large; the sigmoid then
# *saturates* near 0 or 1, where its slope $\sigma'(z)$ is almost 0. Remember that: $\sigma'$ is a
# factor of every error $\delta$ that backprop computes (BP1 and BP2 of section 4), and every
# gradient is made from those errors (BP3 and BP4), so saturated neurons learn slowly.
#
# ## 3. The update line on the real network (5 min)
#
# Section 1's line, now for every weight and bias. `net.backprop(x, y)` returns one example's
# gradient (section 4 opens it); here is Nielsen's `update_mini_batch`: add those up into
# `nabla_w` and `nabla_b`, then the line itself:

# %%
mini_batch = training[:10]
eta = 3.0
nabla_b = [np.zeros(b.shape) for b in net.biases]
nabla_w = [np.zeros(w.shape) for w in net.weights]
for x_i, y_i in mini_batch:
    delta_nabla_b, delta_nabla_w = net.backprop(x_i, y_i)
    nabla_b = [nb + dnb for nb, dnb in zip(nabla_b, delta_nabla_b)]
    nabla_w = [nw + dnw for nw, dnw in zip(nabla_w, delta_nabla_w)]
print("shapes of nabla_w:", [nw.shape for nw in nabla_w], "  weights:", [w.shape for w in net.weights])

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
# **What to notice:** each gradient has the shape of its parameter, so the update subtracts `nw`
# from `w` element by element (`zip` pairs the list of weight matrices, one per layer, with the
# list `nabla_w`). One step lowered the cost on the examples it saw. The 1197 examples leave a
# last mini-batch of 7: `len(mini_batch)` divides its sum by 7, not 10.
#
# ## 4. Where `nabla_w` comes from: backpropagation
#
# ### 4.1 One neuron per layer, by hand (13 min)
#
# Take the smallest network with a hidden layer: one input $x$, one hidden neuron, one output,
# weights $w^2, w^3$, biases $b^2, b^3$, cost $C = \tfrac12 (a^3 - y)^2$. Forward:
# $z^2 = w^2 x + b^2$, $a^2 = \sigma(z^2)$, $z^3 = w^3 a^2 + b^3$, $a^3 = \sigma(z^3)$.
# The superscripts are layer numbers (section 2), not powers. The chain rule needs the sigmoid's
# slope: from $\sigma(z) = 1/(1+e^{-z})$, $\sigma'(z) = e^{-z}/(1+e^{-z})^2 = \sigma(z)\,(1-\sigma(z))$
# (nnlib's `sigmoid_prime`). How large can it get?

# %%
z_grid = np.linspace(-20, 20, 4001)
print(f"sigma'(z): {sigmoid_prime(0.0):.4f} at z = 0, largest on [-20, 20] "
      f"{sigmoid_prime(z_grid).max():.4f}, {sigmoid_prime(10.0):.1e} at z = 10")

# %% [markdown]
# The chain rule walks back through the forward list; call $\delta^l = \partial C/\partial z^l$:
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

# %% [markdown]
# Is it right? Check it without the chain rule: nudge $w^2$ by $\pm\epsilon$, run the forward pass
# again, and divide the change in the cost by $2\epsilon$ (optional section 4.4 shows what the
# size of $\epsilon$ does):

# %%
def tiny_cost(w2):
    a3 = sigmoid(w3 * sigmoid(w2 * x1 + b2) + b3)
    return 0.5 * (a3 - y1) ** 2


eps = 1e-6
nudged = (tiny_cost(w2 + eps) - tiny_cost(w2 - eps)) / (2 * eps)
print(f"nudge: (C(w2 + eps) - C(w2 - eps)) / (2 eps) = {nudged:.6f};  backprop: dC/dw2 = {d2 * x1:.6f};  "
      f"they differ by less than 1e-9: {abs(nudged - d2 * x1) < 1e-9}")

# %% [markdown]
# **What to notice:** the nudge agrees with the chain rule. Every step back multiplies by a weight
# and by a $\sigma'$, which is never above 0.25 and almost 0 for a saturated neuron ($\sigma$ near
# 0 or 1): $\delta^2$ is about a quarter of $\delta^3$ in size here, and of the opposite sign
# (the negative $w^3$ flips it).
#
# That is where `nabla_w` comes from: the chain rule, walked back from the cost, one layer at a
# time. The core path goes on with section 6; sections 4.2–4.4 and 5 (optional) do the same for
# layers of many neurons, and check it.
#
# ### 4.2 The same steps as code, for one example (optional, 11 min)
#
# With many neurons per layer, $\delta^l$ becomes a column, a product with a weight becomes a
# matrix product, and "times $\sigma'$" becomes the **elementwise** (Hadamard) product, written
# $\odot$: $(u \odot v)_j = u_j v_j$, which is numpy's `*` on two arrays of the same shape. Here is
# backprop for one example, in the shape of Nielsen's `backprop`: a forward pass that keeps every
# $z^l$ and $a^l$, then one walk back from the output. Only the indexing differs from his.
#
# One indexing convention for the rest of this notebook: a Python index `k` into `weights`,
# `biases`, `zs`, `nabla_w` and `nabla_b` means Nielsen's layer $l = k + 2$ (his layer 1 is the
# input, which has no weights), and `activations[k]` is $a^{k+1}$. Nielsen's own code counts
# with negative indices from the output instead (his loop variable `l = 2` is the second-last
# layer), and nnlib's source, quoted below, does too. For `Network([64, 30, 10])`, $L = 3$:
#
# | Nielsen's layer | its $W$, $b$, $z$, $\delta$ | Python index `k` (this notebook) | Nielsen's code (from the end) |
# |---|---|---|---|
# | 1, the input $x = a^1$ | none | `activations[0]` | `activations[-3]` |
# | 2, hidden | $W^2, b^2, z^2, \delta^2$ | `weights[0]`, `zs[0]`, `nabla_w[0]`; $a^2$ = `activations[1]` | `weights[-2]`, `zs[-2]` |
# | 3 = $L$, output | $W^3, b^3, z^3, \delta^3$ | `weights[1]`, `zs[1]`, `nabla_w[1]`; $a^3$ = `activations[2]` | `weights[-1]`, `zs[-1]` |

# %%
def backprop_one(weights, biases, x, y):
    """(nabla_b, nabla_w) of C = 1/2 ||a^L - y||^2 for one example x (n_in, 1), y (n_out, 1)."""
    activations, zs, a = [x], [], x  # activations[k] is a^(k+1); zs[k] is z^(k+2)
    for w, b in zip(weights, biases):
        z = w @ a + b
        a = sigmoid(z)
        zs.append(z)
        activations.append(a)
    nabla_b, nabla_w = [None] * len(weights), [None] * len(weights)
    delta = (activations[-1] - y) * sigmoid_prime(zs[-1])  # delta^L
    for k in range(len(weights) - 1, -1, -1):  # k = layer l - 2, from the output back
        if k < len(weights) - 1:
            delta = (weights[k + 1].T @ delta) * sigmoid_prime(zs[k])  # delta^l from delta^(l+1)
        nabla_b[k] = delta
        nabla_w[k] = delta @ activations[k].T
    return nabla_b, nabla_w


nb_one, nw_one = backprop_one(net.weights, net.biases, x, y)
nb_lib, nw_lib = net.backprop(x, y)
print("backprop_one == Network.backprop:",
      all(np.allclose(p, q) for p, q in zip(nb_one + nw_one, nb_lib + nw_lib)))

# %% [markdown]
# ### 4.3 BP1–BP4: the four lines, named (optional, 8 min)
#
# Those four kinds of line are Nielsen's four equations (chapter 2), in his numbering; in the
# code column `k = l - 2`:
#
# | | scalar network (4.1) | layers (Nielsen) | line in `backprop_one` (4.2) |
# |---|---|---|---|
# | BP1 | $\delta^3 = (a^3-y)\,\sigma'(z^3)$ | $\delta^L = (a^L - y) \odot \sigma'(z^L)$ | `delta = (activations[-1] - y) * sigmoid_prime(zs[-1])` |
# | BP2 | $\delta^2 = w^3\delta^3\,\sigma'(z^2)$ | $\delta^l = ((W^{l+1})^\top \delta^{l+1}) \odot \sigma'(z^l)$ | `delta = (weights[k + 1].T @ delta) * sigmoid_prime(zs[k])` |
# | BP3 | $\partial C/\partial b^l = \delta^l$ | $\partial C/\partial b^l_j = \delta^l_j$ | `nabla_b[k] = delta` |
# | BP4 | $\partial C/\partial w^l = \delta^l a^{l-1}$ | $\partial C/\partial W^l_{jk} = a^{l-1}_k \delta^l_j$, i.e. $\delta^l (a^{l-1})^\top$ | `nabla_w[k] = delta @ activations[k].T` |
#
# The transpose in BP2 is the scalar $w^3$ run backwards: $W^{l+1}$ maps layer $l$ forward, so
# $(W^{l+1})^\top$ carries layer $l+1$'s errors back, each along the weight that caused it. In
# the code, $W^{l+1}$ is `weights[k + 1]`, the matrix *after* layer $l$. In BP4 (its $jk$ are
# Nielsen's row and column of $W^l$, not the Python index), a column $\delta^l$ times a row
# $(a^{l-1})^\top$ is the **outer product**: the matrix of every product $\delta^l_j a^{l-1}_k$,
# one per weight, so it has exactly $W^l$'s shape.
#
# nnlib's `Network.backprop` checks its input and hands the example to `backprop_matrix` (section
# 5), a mini-batch of one column. Its lines differ in three ways: it counts layers from the end
# as Nielsen's code does (`weights[-l + 1]`, the last column of the table in 4.2), $\sigma'(z)$
# is computed as `a * (1 - a)` from the activation it already has (the same number, no `exp`),
# and BP3 sums over the batch. Its `delta` lines, quoted from the installed source:

# %%
for line in inspect.getsource(Network.backprop_matrix).splitlines():
    if "delta" in line and " = " in line and not line.strip().startswith("#"):
        print(line.strip())

# %% [markdown]
# **What to notice:** BP1 is the `cost_derivative(a, Y) * a * (1 - a)` line, BP2 the line inside
# the loop, and BP3/BP4 the `nabla_b` / `nabla_w` lines, with `.sum(axis=1, ...)` for the batch.
#
# ### 4.4 Is the gradient right? Two independent checks (optional, 11 min)
#
# **Finite differences.** Nudge one weight by $\pm\epsilon$ and watch the cost:
# $\partial C/\partial w \approx \frac{C(w+\epsilon) - C(w-\epsilon)}{2\epsilon}$. Two errors
# compete. *Truncation*: the $\epsilon^2$ terms of the Taylor series cancel, and the formula
# drops the $\epsilon^3$ term, so its error shrinks like $\epsilon^2$. *Rounding*: each $C$ is
# stored with a relative error of about $u \approx 1.1\times10^{-16}$, and dividing the difference
# by $2\epsilon$ magnifies that to about $u\,C/\epsilon$, which *grows* as $\epsilon$ shrinks.
# Sweep $\epsilon$ and both show:

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


nb_lib, nw_lib = net.backprop(x, y)  # as in 4.2, so that this section runs without it
i, j = np.unravel_index(np.abs(nw_lib[0]).argmax(), nw_lib[0].shape)  # a weight that matters
exact = nw_lib[0][i, j]
epsilons = 10.0 ** -np.arange(1, 13)
rel_err = np.array([abs(finite_difference(net, 0, i, j, e) - exact) / abs(exact) for e in epsilons])
plot_eps_sweep(epsilons, rel_err, title=f"dC/dW^2[{i},{j}] by central differences")
plt.show()
print("smallest relative error below 1e-9:", bool(rel_err.min() < 1e-9))
print(f"rounding estimate u*C/(eps*|dC/dw|) at eps = 1e-6: {1.1e-16 * cost_one(net, x, y) / (1e-6 * abs(exact)):.0e}")

# %%
# NBVAL_IGNORE_OUTPUT
# The exact numbers depend on how this machine's BLAS rounds, so the notebook tests skip them.
print(f"smallest error {rel_err.min():.1e}, at eps = {epsilons[rel_err.argmin()]:.0e}")

# %% [markdown]
# **What to notice:** the V. Right of the minimum the error falls with $\epsilon^2$, along the
# dashed guide (truncation); left of it, it *rises* roughly like $1/\epsilon$, along the dotted
# one (rounding). At $\epsilon = 10^{-6}$, a common choice (and 4.1's), you are already on the rounding side:
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
print("backprop equals autograd to within 1e-12:", max(gaps) < 1e-12)

# %%
# NBVAL_IGNORE_OUTPUT
# The exact gap is rounding and differs between CPUs and BLAS libraries, so the notebook tests skip it.
print(f"largest gap between backprop and autograd: {max(gaps):.1e}")

# %% [markdown]
# **What to notice:** autograd agrees to rounding, because it *is* the chain rule, done by a
# machine: no $\epsilon$, so no V.
#
# ## 5. The whole mini-batch as one matrix (optional, 8 min)
#
# The loop of section 3 calls `backprop` once per example. nnlib's `backprop_matrix` puts the $m$
# examples side by side as the **columns** of `X`, shape `(64, m)` (and `Y`, `(10, m)`), so every
# $z^l$ and $\delta^l$ becomes a matrix with one column per example. BP1, BP2 and BP4 read exactly
# as in `backprop_one`; `delta @ a_prev.T` even *sums* the $m$ outer products for free. BP3 does
# **not**: $\delta^l$ is now `(n, m)`, and the bias gradient must be summed over the batch axis.
# Forget the sum in Nielsen's form of the step, `b - eta/m * nb`, and the step itself raises no
# error: numpy broadcasts, and the bias silently becomes a matrix with one column per example.
# The next mini-batch of the same size still runs (each example now gets its own, meaningless
# bias); one of another size, such as an epoch's last, shorter mini-batch, stops with a
# broadcasting error, except a single example, which broadcasts too and is silently wrong.
# (nnlib's `update_mini_batch_matrix` writes the step in place, `b -= step * nb`, and there the
# missing sum does raise at once: numpy cannot write an `(n, m)` result into an `(n, 1)` bias.)

# %%
X = np.hstack([x_i for x_i, _ in mini_batch])
Y = np.hstack([y_i for _, y_i in mini_batch])
A = net.feedforward(X)
delta = (A - Y) * A * (1 - A)  # BP1, with sigma'(z) = a(1 - a): shape (10, m)
print("X:", X.shape, " Y:", Y.shape, " delta^L:", delta.shape)
print("b - eta/m * delta.sum(axis=1, keepdims) ->",
      (net.biases[-1] - eta / 10 * delta.sum(axis=1, keepdims=True)).shape)
broken = net.copy()
broken.biases[-1] = broken.biases[-1] - eta / 10 * delta  # BP3 without the sum over the batch
print("b - eta/m * delta                     ->", broken.biases[-1].shape, " (wrong, and no error)")
print("next mini-batch of 10: output", broken.feedforward(X).shape, " (runs, wrong)")
try:
    broken.feedforward(X[:, :7])  # a mini-batch of 7, like the last one of an epoch
except ValueError as err:
    print("next mini-batch of 7: ValueError:", str(err).strip())
print("next mini-batch of 1: output", broken.feedforward(X[:, :1]).shape, " (no error, wrong)")
in_place = net.biases[-1].copy()
try:
    in_place -= eta / 10 * delta  # nnlib's in-place form of the step, without the sum
except ValueError as err:
    print("b -= eta/m * delta (in place): ValueError:", str(err).strip())

# %% [markdown]
# **What to notice:** a single example's output is a `(10, 10)` matrix instead of a column, and
# nothing complains. Nielsen's form hides the mistake until a mini-batch of another size arrives,
# and from single examples for good; nnlib's in-place form refuses at the very first step.
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
# ### 5.1 Exercise 2: backprop for a whole mini-batch (optional, 18 min)
#
# Turn `backprop_one` into backprop for a whole mini-batch: `X` is `(n_in, m)`, `Y` is
# `(n_out, m)`, and, as in 4.2, `weights[k]` is Nielsen's $W^{k+2}$. Return `(nabla_b, nabla_w)`,
# each a list with one array per layer, **summed** over the $m$ examples (what the loop of
# section 3 adds up). The checker compares layer by layer, from the output back, with nnlib's
# `backprop_matrix` and with torch's autograd, and names the equation (BP1–BP4) where yours first
# differs.

# %%
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
# Only BP3 differs from `backprop_one`.
# </details>
#
# ## 6. Training, measured on the validation set (4 min)
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
    print(f"epoch {epoch:2d} (after {history.step[epoch]:4d} steps): validation accuracy "
          f"{history.accuracy[epoch]:.3f}   training cost {history.cost[epoch]:.4f}")
plot_history(history)
plt.show()

# %% [markdown]
# **What to notice:** epoch 0 is the untrained network. Most of the learning happens in the
# first few epochs; after that the cost keeps falling slowly while the accuracy flattens out.
#
# ## 7. Choosing `eta`, and why divide by `len(mini_batch)` (14 min, Exercise 3 included)
#
# Section 1.3 showed it on one weight: the summed step is the mean's step with `eta` times $m$.
# Nielsen remarks (chapter 1) that dropping the $1/m$ only rescales $\eta$. On the digits network
# too, exactly:

# %%
summed, mean = Network([64, 30, 10], seed=0), Network([64, 30, 10], seed=0)
summed.SGD(training[:600], 1, 20, 0.15, progress=False, average=False)  # w - eta * sum
mean.SGD(training[:600], 1, 20, 0.15 * 20, progress=False)              # w - (eta*m)/m * sum
print("sum with eta=0.15 == mean with eta=0.15*20:",
      all(np.allclose(p, q) for p, q in zip(summed.weights, mean.weights)))

# %% [markdown]
# So with the sum, a good `eta` for one mini-batch size is a different `eta` for another. How
# different? First, Nielsen's mean: a fresh network from the same start for every pair of `eta`
# and mini-batch size `m`, trained on the first 600 training examples for exactly 150 steps (24
# runs), scored on validation. We count *steps* (updates), not epochs: an epoch of 600 examples
# is 150 steps with `m = 4` but only 10 with `m = 64` (600 = 9 × 64 + 24: nine mini-batches of
# 64, then one of 24), and `eta` is about how far each step goes.

# %%
etas, batch_sizes = [0.01, 0.03, 0.1, 0.3, 1, 3, 10, 30], [4, 16, 64]
grids = {True: accuracy_grid(training[:600], validation, etas, batch_sizes, steps=150, average=True)}


def print_bands(average):
    for m, row in zip(batch_sizes, grids[average]):
        good = [e for e, acc in zip(etas, row) if acc >= 0.5]
        print(f"{'mean' if average else 'sum ':4s} m={m:2d}: accuracy >= 0.5 for eta in {good};  "
              f"best eta {etas[int(np.argmax(row))]} ({row.max():.2f})")


print_bands(True)

# %% [markdown]
# **What to notice:** with the mean, the band of good `eta` (accuracy at least 0.5) is the same
# for every `m`. The best `eta` still moves, from 3 at `m = 4` to 10 at `m = 64` (a likely
# reason: a bigger mini-batch gives a less noisy mean, optional section 1.5, which tolerates a
# longer step).
#
# **Exercise 3 (predict, then check).** Take the mean's good band at `m = 64` from the printout
# above as `(low, high)`. Before running anything more, predict the band of learning rates that
# works with the **sum** at `m = 256`: write `sum_band(mean_band, m)`. After the solution, the
# sum's grid, then a cell that trains with the sum at `m = 256` at both ends of *your* band and
# 4× outside each end, so you see whether you were right.

# %%
def sum_band(mean_band, m):
    raise NotImplementedError


check_sum_band(sum_band)

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# def sum_band(mean_band, m):
#     low, high = mean_band
#     return low / m, high / m
# ```
# The summed step `eta_sum * sum` is `eta_sum * m * mean`, the mean's step with
# `eta = eta_sum * m`. So the sum works where `eta_sum * m` lies in the mean's band: divide
# both ends by `m`.
# </details>
#
# Now the same grid with the sum (24 more runs), beside the mean's, as heatmaps:

# %%
grids[False] = accuracy_grid(training[:600], validation, etas, batch_sizes, steps=150, average=False)
fig, axes = plt.subplots(1, 2, figsize=(11, 2.8))
plot_accuracy_grid(grids[True], etas, batch_sizes, axes[0], "mean: w - eta/m * sum")
plot_accuracy_grid(grids[False], etas, batch_sizes, axes[1], "sum: w - eta * sum")
plt.show()
print_bands(False)
odd = Network([64, 30, 10], seed=0)  # the sum's cell at m = 64, eta = 0.3, trained again
train_for_steps(odd, training[:600], 150, 64, 0.3, average=False)
out = odd.feedforward(np.hstack([x_v for x_v, _ in validation]))
print(f"sum, m = 64, eta = 0.3: largest output on any validation image {out.max():.4f};  "
      f"its answers, counted per digit 0-9: {np.bincount(out.argmax(axis=0), minlength=10).tolist()}")

# %% [markdown]
# **What to notice:** with the sum (right) the bright band moves left as `m` grows, from 0.3–1
# at `m = 4` to 0.01–0.1 at `m = 64`: the summed step is `m` times the mean's, so each 4× larger
# batch makes every step about 4× longer, and the top of the band starts to overshoot. It follows
# that $1/m$ only roughly, as the mean's own band is not a fixed point either. That is why Nielsen
# divides: with the mean, **the band of good `eta` stays roughly in place as the mini-batch size
# changes, and `eta` no longer carries a factor of `m`**.
#
# One cell is far *below* chance (one in ten): 0.03 at `m = 64`, `eta = 0.3`, the mean's step
# with `eta` 64 times larger. For the first part of the run its steps overshot back and forth
# (the largest output swung between near 0 and near 1), until one step pushed all ten outputs to
# almost 0 for every image (the last line), where $\sigma' \approx 0$ (section 4.1), so learning
# stopped. The answer is then the largest of ten near-zero numbers: it is 6 or 2 for every
# image, and mostly for the wrong ones.
#
# The check of Exercise 3: a hit is accuracy of at least 0.5 at the two ends of your band, and
# below 0.5 at the two neighbours outside it.

# %%
good_64 = [e for e, acc in zip(etas, grids[True][-1]) if acc >= 0.5]
mean_band = (min(good_64), max(good_64))
try:
    low, high = (float(e) for e in sum_band(mean_band, 256))
except NotImplementedError:
    print("Attempt Exercise 3 first: write sum_band above, run it, then run this cell again.")
else:
    print(f"the mean's band at m = 64: {mean_band};  your sum_band predicts {low:.2g} to {high:.2g}")
    tries = {low / 4: False, low: True, high: True, high * 4: False}  # eta -> should it train?
    accs = accuracy_grid(training[:600], validation, list(tries), [256], steps=150, average=False)[0]
    for (eta_try, inside), acc in zip(tries.items(), accs):
        where = "(predicted end)" if inside else "(4x outside)"
        hit = (acc >= 0.5) == inside
        print(f"sum, m = 256, eta = {eta_try:<8.2g} {where:15s}: accuracy {acc:.2f}  "
              f"{'hit' if hit else 'miss'}")

# %% [markdown]
# **What to notice:** if all four lines say *hit*, your band was right: both ends train, and 4×
# beyond either end is back near chance, too short a step on one side, an overshoot on the
# other. (600 is not a multiple of 256, so each epoch ends with a shorter mini-batch, whose summed
# step is shorter: the match need not be exact at the edges.)
#
# ### 7.1 The learning rate alone, and try it yourself (optional, 10 min)
#
# The learning rate alone, with Nielsen's mean: the same network from the same start, five values
# of `eta`, each given **600 steps** (`nnlib.sgd.train_for_steps`) with mini-batches of 10 from
# the first 600 training examples, measured on validation.

# %%
fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
runs = {}
for eta_try in [0.03, 0.3, 3.0, 30.0, 300.0]:
    runs[eta_try] = train_for_steps(Network([64, 30, 10], seed=0), training[:600], 600, 10, eta_try,
                                    test_data=validation)
    plot_history(runs[eta_try], axes, label=f"eta={eta_try:g}", x="step")
plt.show()
for eta_try, h in runs.items():
    acc = dict(zip(h.step, h.accuracy))
    first = next((f"step {s}" for s, a in zip(h.step, h.accuracy) if a >= 0.5), "never")
    print(f"eta = {eta_try:<5g}: training cost {h.cost[0]:.2f} -> {h.cost[-1]:.2f};  validation "
          f"accuracy at step 0, 120, 300, 600: {acc[0]:.2f}, {acc[120]:.2f}, {acc[300]:.2f}, "
          f"{acc[600]:.2f};  first >= 0.5: {first}")

# %% [markdown]
# **What to notice:** with `eta = 0.03` the cost falls, but the accuracy stays near chance: the
# steps are too short. The two largest overshoot in the first steps and push the sigmoids into
# saturation, where $\sigma'(z) \approx 0$: the cost goes flat and learning stops. Only `eta = 3`
# learns quickly (past 0.5 by step 60, 0.94 after 600 steps); `eta = 0.3` stays at chance for
# the first 120 steps and reaches only 0.64. The good range is narrow: measure it, don't guess.
#
# Now the widget: untick *divide by m* and change the mini-batch size. Each move retrains from
# the same start for the same 600 steps, measured on the validation set, and keeps the previous
# run faint.
#
# *(The widget needs a running kernel; on GitHub you see only this text.)*

# %%
# NBVAL_IGNORE_OUTPUT
# (ignored by the notebook tests: each front end captures a widget's plot differently)
from nnlib.widgets import LearningRateExplorer

LearningRateExplorer(training, validation)

# %% [markdown]
# ### 7.2 The test set, once (1 min)
#
# The choice of `eta` rests on validation only: `eta = 3.0` sits inside the mean's good band for
# every `m` in the grid, and section 6's validation curve with Nielsen's 30 epochs of
# mini-batches of 10 had flattened out. Only now do we look at the test set, once:

# %%
print(f"test accuracy of the network of section 6: {net.evaluate(test) / len(test):.3f}")

# %% [markdown]
# ## 8. torch: the same step, and a trap (optional, 10 min)
#
# In torch you write the forward pass and a loss; autograd gives the gradient and
# `torch.optim.SGD(params, lr=eta)` does `p -= lr * p.grad`. The optimiser has no
# `/ len(mini_batch)`, so the mean lives in the loss. With Nielsen's cost,
# `0.5 * ((a - Y) ** 2).sum() / m`, torch takes exactly nnlib's step:

# %%
mini_batch, eta = training[:10], 3.0  # section 3's mini-batch and eta, bound again here
X = np.hstack([x_i for x_i, _ in mini_batch])  # its columns, as in section 5
Y = np.hstack([y_i for _, y_i in mini_batch])
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
# too divides it by 10); `reduction="sum"` gives $2\times$ the sum, a step $2m$ times longer, $m$
# of it from the lost mean. Neither is wrong, but each needs its own learning rate, and
# `reduction="sum"` needs a new one whenever the batch size changes, as the right heatmap showed.
#
# ## 9. More exercises (optional, 12 min)
#
# Each checker says right or not yet; the solution is hidden below each one. Try first.
#
# **Exercise 4.** How many numbers (weights and biases) does `Network(sizes)` have? Write it for
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
# **Exercise 5.** With the cross-entropy cost $C = -\sum_j [y_j \ln a_j + (1-y_j)\ln(1-a_j)]$
# instead of the quadratic one, what is the output error $\delta^L$ (BP1)? Return it from
# `a`, `y` and `z`. (Nielsen, chapter 3: this cost does not slow down on saturated outputs, like
# the ones of section 2.1.) Only BP1 changes: BP2–BP4 and the update line stay as they are.

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
# ## What you now know, and what comes next (2 min)
#
# `w - (eta/len(mini_batch))*nw` is: the weights, minus the learning rate times the **mean**
# gradient over a random handful of examples, where the gradient comes from four equations of
# chain rule. The minus sign steps downhill; `eta` is the step size, with a limit above which
# descent diverges; the mean keeps the band of good `eta` roughly in place as the mini-batch size
# changes and removes the sum's exact factor of `m` (the best `eta` still moves a little).
#
# The trained networks of the next notebooks learned the same way, a gradient from a mini-batch
# and then a step against it, though not with this plain step. Two whose training you can read:
# spaCy's English pipeline in notebook 02 used Thinc's Adam (`Adam.v1` in the
# `[training.optimizer]` block of its `config.cfg`), with backprop written by hand inside each
# Thinc layer and no torch at all; the tiny Llama of notebooks 03 and 04 used torch's `AdamW`,
# with torch's autograd doing the backprop (`loss.backward()` in `scripts/train_tiny_llama.py`).
# Next: **02 · spaCy pipelines**, where trained networks become tools you load and use.
#
# ### What `nnlib.sgd` leaves out (optional, 2 min)
#
# **Weight decay** (L2 regularisation, Nielsen chapter 3) adds $\tfrac{\lambda}{2n}\sum w^2$ to
# the cost, which puts an extra $-\eta\frac{\lambda}{n} w$ into the update line; **momentum**
# keeps a running velocity $v \to \mu v - \eta\,\nabla C$ and steps $w \to w + v$ (as in section
# 1.1, $\nabla C$ is the mean cost's gradient: in code `v = mu*v - (eta/len(mini_batch))*nw`, with
# `nw` the sum); a **GPU** means holding the arrays as torch tensors on the device, which
# notebooks 03b to 05 do (03 stays on the CPU).
#
# ### まとめ（日本語）
#
# - ∇（ナブラ）は偏微分を並べたもの、つまり勾配です。`update_mini_batch` の `nabla_w` はミニバッチ内の
#   各例のコストの勾配 $\partial C_x/\partial w$ の**和**（平均コスト $C$ なら $m\,\partial C/\partial w$）で、
#   形は `weights` と同じです。`backprop` の中では 1 例分の $\partial C_x/\partial w$ です。
# - 勾配は坂を上る向きを指すので、更新は勾配を**引き**ます。小さな `eta` なら
#   $\Delta C \approx -\eta\|\nabla C\|^2 \le 0$ となり、コストは下がります。`eta` が大きすぎると
#   行き過ぎて発散します（1 変数なら $\eta < 2/C''$）。
# - 1.3 節: 割らずに和のまま、同じ `eta = 0.5` で更新すると、8 点だけでも発散しました
#   （和の歩幅は平均の 8 倍）。
# - `len(mini_batch)` で割ると勾配が**平均**になり、良い `eta` の範囲はミニバッチの大きさを変えても
#   ほぼ同じ位置に留まります（m 倍の依存が消えます。最良の値は少し動きます）。割らない（和のまま）と、
#   良い `eta` の範囲は m が大きいほど小さい側へずれます。
# - `nabla_w` は誤差逆伝播法（連鎖律）で求めます。1-1-1 のネットワークで手計算し、重みを ±1e-6 ずらした
#   数値微分で確かめました（任意の節では
#   1 例分のコードと BP1〜BP4 を対応させ、ミニバッチを行列で扱うときはバイアスの勾配をバッチ方向に
#   足し合わせます）。
# - 学習率の比較は、エポック数ではなく**更新回数（ステップ数）**をそろえて行いました。
# - （任意の 8 節）PyTorch の `F.mse_loss` は m×10 個の要素で平均し ½ もないため、同じ `eta` でも
#   歩幅が変わります。
# - `eta` などは検証データで選び、テストデータは最後に一度だけ評価します。

# %%
# NBVAL_IGNORE_OUTPUT
# Time and memory depend on the machine, so the notebook tests skip this line.
print(_clock.report("torch imported, the digits and a few small networks in memory"))
