"""The two figures of notebook 05: what they draw is the array they are given (checked on the
matplotlib artists), and a mismatched input is a clear ValueError."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from nnlib.plots import plot_attention_row, plot_cache_fill  # noqa: E402


def test_cache_fill_draws_one_panel_per_snapshot_with_the_writing_call():
    # 2 layers, 5 positions: prefill wrote 0..2, then one decode step wrote 3.
    after_prefill = np.array([[0, 0, 0, -1, -1]] * 2)
    after_decode = np.array([[0, 0, 0, 1, -1]] * 2)
    axes = plot_cache_fill(np.stack([after_prefill, after_decode]), ["prefill", "decode 1"])
    assert len(axes) == 2
    for ax, grid in zip(axes, (after_prefill, after_decode)):
        np.testing.assert_array_equal(ax.images[0].get_array(), grid + 1)  # 0 = empty
        assert sorted(t.get_text() for t in ax.texts) == sorted(str(c) for c in grid.ravel() if c >= 0)
    plt.close("all")


def test_cache_fill_wants_one_title_per_snapshot():
    with pytest.raises(ValueError, match="one title each"):
        plot_cache_fill(np.zeros((2, 3, 4), dtype=int), ["only one"])


def test_attention_row_adds_the_mean_over_heads_and_separates_kv_groups():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(6, 5))
    weights = np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)
    fig, ax = plt.subplots(figsize=(4, 3))
    plot_attention_row(weights, list("abcde"), ax=ax, kv_group=3)
    drawn = np.asarray(ax.images[0].get_array())
    assert drawn.shape == (7, 5)  # six heads, then the mean
    np.testing.assert_allclose(drawn[:6], weights)
    assert [t.get_text() for t in ax.get_xticklabels()] == list("abcde")
    assert len(ax.lines) == 2  # one line between the two groups of 3 heads, one above the mean
    plt.close(fig)
    # The mean row, by hand for two heads: ((0.5 + 0.1) / 2, (0.25 + 0.6) / 2, (0.25 + 0.3) / 2)
    # = (0.3, 0.425, 0.275)
    fig, ax = plt.subplots(figsize=(4, 3))
    plot_attention_row(np.array([[0.5, 0.25, 0.25], [0.1, 0.6, 0.3]]), list("xyz"), ax=ax)
    np.testing.assert_allclose(np.asarray(ax.images[0].get_array())[2], [0.3, 0.425, 0.275], atol=1e-12)
    plt.close(fig)


def test_attention_row_wants_one_label_per_column():
    with pytest.raises(ValueError, match="3 labels"):
        plot_attention_row(np.full((2, 4), 0.25), ["a", "b", "c"])
