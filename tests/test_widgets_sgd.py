"""nnlib.widgets.LearningRateExplorer driven headless."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

from nnlib.data import load_digits  # noqa: E402
from nnlib.widgets import LearningRateExplorer  # noqa: E402


def test_explorer_retrains_from_the_same_start_with_the_chosen_settings():
    training, _, test = load_digits()
    explorer = LearningRateExplorer(training, test, epochs=3, n_train=200)
    first = explorer.run()
    assert first.accuracy == explorer.run().accuracy  # same seed, same start, same result
    explorer.eta.value = 0.01
    assert explorer.previous is not None and explorer.previous[0].startswith("eta=0.01")
    slow = explorer.run()
    assert slow.accuracy[-1] < first.accuracy[-1]
    explorer.mini_batch_size.value = 200
    assert explorer.previous[0].endswith("m=200")
    assert len(explorer.run().epoch) == 3
