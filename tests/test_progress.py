"""nnlib.progress: tqdm bars whose saved notebook text is the finished bar."""
from __future__ import annotations

import IPython.display
import pytest
import tqdm.auto
from tqdm.notebook import tqdm as notebook_tqdm

from nnlib.data import load_digits
from nnlib.progress import progress_bar, track
from nnlib.sgd import Network


class FakeHandle:
    """What IPython's display(..., display_id=True) returns. Like IPython, it turns what it is
    shown into text at once: that text is what a saved notebook keeps."""

    def __init__(self, shown):
        self.objects, self.shown = [shown], [repr(shown)]

    def update(self, obj):
        self.objects.append(obj)
        self.shown.append(repr(obj))


@pytest.fixture
def as_in_a_notebook(monkeypatch):
    """tqdm.auto resolving to the notebook widget, and display() recording its handles."""
    handles = []

    def display(obj, display_id=False):
        assert display_id, "progress_bar must ask for a handle it can update"
        handles.append(FakeHandle(obj))
        return handles[-1]

    monkeypatch.setattr(tqdm.auto, "tqdm", notebook_tqdm)
    monkeypatch.setattr(IPython.display, "display", display)
    return handles


def test_track_in_a_notebook_saves_the_finished_bar(as_in_a_notebook):
    seen = list(track(["a", "b", "c", "d"], "timing"))
    assert seen == ["a", "b", "c", "d"]
    (handle,) = as_in_a_notebook
    assert handle.objects[-1] is handle.objects[0], "the same widget, shown again once finished"
    assert "0/4" in handle.shown[0], "what the saved notebook kept before"
    assert "timing" in handle.shown[-1] and "4/4" in handle.shown[-1], handle.shown[-1]


def test_track_stops_the_bar_when_the_loop_breaks(as_in_a_notebook):
    for item in track(range(10), "early"):
        if item == 2:
            break
    import gc

    gc.collect()  # the abandoned generator closes, and its bar with it
    (handle,) = as_in_a_notebook
    assert len(handle.shown) == 2 and "2/10" in handle.shown[-1], handle.shown


def test_progress_bar_outside_a_notebook_is_tqdms_text_bar(capsys):
    for _ in track(range(3), "steps", unit="step"):
        pass
    err = capsys.readouterr().err
    assert "steps" in err and "3/3" in err


def test_progress_bar_disabled_shows_nothing_in_or_out_of_a_notebook(capsys, as_in_a_notebook):
    with progress_bar(5, "nothing", enabled=False) as bar:
        bar.set_postfix(accuracy="0.5", refresh=False)  # the same calls work, and do nothing
        bar.update(1)
    out = capsys.readouterr()
    assert out.err == "" and out.out == "" and as_in_a_notebook == []


def test_sgd_shows_its_epochs_and_accuracy(capsys):
    training, validation, _ = load_digits()
    Network([64, 10], seed=0).SGD(training[:40], 2, 10, 1.0, test_data=validation[:20])
    err = capsys.readouterr().err
    assert "epochs" in err and "2/2" in err and "accuracy=" in err
