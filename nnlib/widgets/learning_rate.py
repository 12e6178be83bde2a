"""``LearningRateExplorer`` (notebook 01): train a small network for a fixed number of *steps* with
the chosen ``eta`` and mini-batch size, with or without the update's division by
``len(mini_batch)``, and redraw the learning curves against the step count, to *see* divergence,
noise, and what the 1/m is for.

Steps, not epochs: an epoch of 600 examples is 600 updates with m = 1 but one update with
m = 600, so a fixed number of epochs would compare a long walk with a single step.

The logic lives in plain methods (``run``) so tests drive it headless; the ipywidgets tree is
``.widget``. Only controls present in ipywidgets 7 and 8 are used (Colab runs 7).
"""
from __future__ import annotations

from typing import Any


class LearningRateExplorer:
    """A slider for ``eta`` (log scale), a dropdown for the mini-batch size and a "divide by m"
    box; each change retrains from the same initial weights for ``steps`` updates and redraws
    accuracy and cost against the step count, keeping the previous run faint for comparison.

    ``training`` / ``test`` are in Nielsen's layout (``nnlib.data.load_digits``). ``test`` is the
    held-out set the curves are measured on: pass the *validation* set, since moving the controls
    is choosing ``eta``. Only the first ``n_train`` training examples are used so one run takes
    about a second.
    """

    def __init__(self, training: list, test: list, sizes: tuple[int, ...] = (64, 30, 10),
                 steps: int = 600, n_train: int = 600, seed: int = 0) -> None:
        import ipywidgets as w

        self.training, self.test = training[:n_train], test
        self.sizes, self.steps, self.seed = list(sizes), steps, seed
        self.eta = w.FloatLogSlider(value=3.0, base=10, min=-2, max=2.5, step=0.1,
                                    description="eta", continuous_update=False)
        self.mini_batch_size = w.Dropdown(options=[1, 5, 10, 50, 200, 600], value=10,
                                          description="mini-batch")
        self.average = w.Checkbox(value=True, description="divide by m (mean gradient)",
                                  indent=False)
        self.output = w.Output()
        self.previous: Any = None
        self.eta.observe(self._redraw, names="value")
        self.mini_batch_size.observe(self._redraw, names="value")
        self.average.observe(self._redraw, names="value")
        self.widget = w.VBox([w.HBox([self.eta, self.mini_batch_size, self.average]),
                              w.Label(f"every run: {steps} updates from the same start"),
                              self.output])

    def run(self):
        """Train a fresh network (same seed, so the same start) for ``steps`` updates with the
        current settings; returns its ``History`` (20 measurements, plus step 0)."""
        from nnlib.sgd import Network, train_for_steps

        net = Network(self.sizes, seed=self.seed)
        return train_for_steps(net, self.training, self.steps, int(self.mini_batch_size.value),
                               float(self.eta.value), test_data=self.test,
                               average=bool(self.average.value))

    def _redraw(self, _change: Any = None) -> None:
        import matplotlib.pyplot as plt

        from nnlib.plots import plot_history

        history = self.run()
        with self.output:
            self.output.clear_output(wait=True)
            fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
            if self.previous is not None:
                plot_history(self.previous[1], axes, label=self.previous[0], x="step")
                for ax in axes:
                    for line in ax.lines:
                        line.set_alpha(0.3)
            label = f"eta={self.eta.value:.3g}, m={self.mini_batch_size.value}"
            if not self.average.value:
                label += ", sum (no 1/m)"
            plot_history(history, axes, label=label, x="step")
            plt.show()
        self.previous = (label, history)

    def _ipython_display_(self) -> None:
        from IPython.display import display

        if self.previous is None:
            self._redraw()
        display(self.widget)
