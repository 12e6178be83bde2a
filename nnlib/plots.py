"""Plots shared by the notebooks (matplotlib, imported here only).

Every function takes an optional ``ax`` and returns the axes it drew on, so a notebook can put
several on one figure. Figure sizes are always explicit: nbval compares a figure's text repr.
"""
from __future__ import annotations


# ---- 01 SGD from scratch -------------------------------------------------------------------


def show_digits(data, n: int = 20, cols: int = 10, side: int = 8, axes=None):
    """A grid of the first ``n`` images of ``data`` (Nielsen's layout), each titled with its label.

    Labels come from the one-hot ``y`` (training data) or the int (validation/test data).
    """
    import matplotlib.pyplot as plt
    import numpy as np

    rows = -(-n // cols)
    if axes is None:
        _, axes = plt.subplots(rows, cols, figsize=(cols * 0.9, rows * 1.1))
    for ax, (x, y) in zip(np.ravel(axes), data[:n]):
        label = int(np.argmax(y)) if np.ndim(y) else int(y)
        ax.imshow(x.reshape(side, side), cmap="gray_r")
        ax.set_title(str(label), fontsize=9)
    for ax in np.ravel(axes):
        ax.axis("off")
    return axes


def plot_history(history, axes=None, label: str | None = None):
    """Learning curves from ``Network.SGD``: test accuracy (left) and training cost (right)."""
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    acc_ax, cost_ax = axes
    if history.accuracy:
        acc_ax.plot(history.epoch, history.accuracy, marker=".", label=label)
    acc_ax.set(xlabel="epoch", ylabel="test accuracy", ylim=(0, 1))
    cost_ax.plot(history.epoch, history.cost, marker=".", label=label)
    cost_ax.set(xlabel="epoch", ylabel="training cost (quadratic)")
    if label is not None:
        cost_ax.legend(fontsize=8)
    for ax in axes:
        ax.grid(alpha=0.3)
    return axes


# ---- 02 spaCy pipelines --------------------------------------------------------------------


def plot_throughput(words_per_second: "dict[str, float]", ax=None, title: str = ""):
    """Horizontal bars of words per second, one per way of running a pipeline (notebook 02).

    ``words_per_second`` maps a label ("loop of nlp(text)", "nlp.pipe", ...) to a rate; bars keep
    the dict's order from top to bottom and carry their value, so ratios can be read off directly.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7.5, 0.6 + 0.55 * len(words_per_second)))
    labels = list(words_per_second)[::-1]
    values = [words_per_second[k] for k in labels]
    bars = ax.barh(labels, values, color="#4c72b0")
    ax.bar_label(bars, labels=[f"{v:,.0f}" for v in values], padding=3, fontsize=9)
    ax.set_xlabel("words per second (higher is better)")
    ax.set_xlim(0, max(values) * 1.2)
    if title:
        ax.set_title(title)
    return ax



# ---- 03 Loading Llama ----------------------------------------------------------------------


# ---- 04 Step-through generation ------------------------------------------------------------
