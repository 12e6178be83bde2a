"""nnlib.widgets.LearningRateExplorer driven headless."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

from nnlib.data import load_digits  # noqa: E402
from nnlib.widgets import LearningRateExplorer  # noqa: E402


def test_explorer_retrains_from_the_same_start_with_the_chosen_settings():
    training, validation, _ = load_digits()
    explorer = LearningRateExplorer(training, validation, steps=60, n_train=200)
    first = explorer.run()
    assert len(first.accuracy) >= 2  # measured before and after training
    assert first.accuracy == explorer.run().accuracy  # same seed, same start, same result
    explorer.eta.value = 0.01
    assert explorer.previous is not None and explorer.previous[0].startswith("eta=0.01")
    slow = explorer.run()
    assert slow.accuracy[-1] < first.accuracy[-1]
    explorer.mini_batch_size.value = 200
    assert explorer.previous[0].endswith("m=200")
    assert explorer.run().step[0] == 0  # measured before training too


def test_every_mini_batch_size_gets_the_same_number_of_updates():
    """The issue with a fixed number of epochs: m = 600 on 600 examples made 10 updates where
    m = 1 made 6,000. With a fixed number of steps, both take ``steps`` updates; only the number
    of passes over the data differs (m * steps / n)."""
    training, validation, _ = load_digits()
    explorer = LearningRateExplorer(training, validation, steps=40, n_train=600)
    for m in (1, 10, 600):
        explorer.mini_batch_size.value = m
        history = explorer.run()
        assert history.step[-1] == 40
        assert history.epoch[-1] == m * 40 / 600


def test_unticking_divide_by_m_is_a_step_m_times_longer():
    """Without the 1/m, eta on a mini-batch of m is the mean's eta * m (Nielsen's remark)."""
    training, validation, _ = load_digits()
    summed = LearningRateExplorer(training, validation, steps=40, n_train=100)
    summed.mini_batch_size.value = 5
    summed.eta.value = 0.1
    summed.average.value = False
    assert summed.previous[0].endswith("sum (no 1/m)")
    mean = LearningRateExplorer(training, validation, steps=40, n_train=100)
    mean.mini_batch_size.value = 5
    mean.eta.value = 0.5
    mean_cost, summed_cost = mean.run().cost, summed.run().cost
    assert len(mean_cost) >= 2 and mean_cost[-1] != mean_cost[0]  # it trained: something to compare
    assert mean_cost == summed_cost
