"""Progress bars (tqdm) whose text in a saved notebook tells the truth.

In JupyterLab tqdm draws a widget. A saved notebook keeps the widget's plain-text stand-in from
the moment it was first shown ("0/4"), so a reader of the committed notebook, or of the page
GitHub renders, would think the loop never ran. ``progress_bar`` shows the widget through a
display handle and updates the handle when the loop ends, which saves the finished bar's text.
Outside a notebook it is tqdm's usual text bar.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

T = TypeVar("T")


@contextmanager
def progress_bar(total: int, desc: str, unit: str = "it", enabled: bool = True) -> Iterator[Any]:
    """A tqdm bar over ``total`` steps (call ``update(1)``, ``set_postfix``); in a notebook its
    saved text is the finished bar's. Not ``enabled``: a bar that shows nothing, so the loop
    using it reads the same either way."""
    from tqdm.auto import tqdm
    from tqdm.notebook import tqdm as notebook_tqdm

    handle = None
    if not enabled:
        bar = tqdm(total=total, disable=True)
    elif issubclass(tqdm, notebook_tqdm):
        from IPython.display import display

        bar = tqdm(total=total, desc=desc, unit=unit, display=False)
        handle = display(bar.container, display_id=True)
    else:
        bar = tqdm(total=total, desc=desc, unit=unit)
    try:
        yield bar
    finally:
        bar.close()
        if handle is not None:
            handle.update(bar.container)


def track(items: Iterable[T], desc: str, unit: str = "it") -> Iterator[T]:
    """``for x in track(items, "timing"):``: the items, one by one, under a ``progress_bar``."""
    items = list(items)
    with progress_bar(len(items), desc, unit) as bar:
        for item in items:
            yield item
            bar.update(1)
