"""Plots shared by the notebooks (matplotlib, imported here only).

Every function takes an optional ``ax`` and returns the axes it drew on, so a notebook can put
several on one figure. Figure sizes are always explicit: nbval compares a figure's text repr.
"""
from __future__ import annotations

from nnlib import palette

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


def plot_history(history, axes=None, label: str | None = None, x: str = "epoch"):
    """Learning curves from ``Network.SGD`` or ``nnlib.sgd.train_for_steps``: accuracy on the
    held-out data it was given (left) and training cost (right), from before training, against
    ``x``: ``"epoch"`` (passes over the data) or ``"step"`` (updates made)."""
    import matplotlib.pyplot as plt

    if x not in ("epoch", "step"):
        raise ValueError(f'x must be "epoch" or "step", got {x!r}.')
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    acc_ax, cost_ax = axes
    xs = history.epoch if x == "epoch" else history.step
    if history.accuracy:
        acc_ax.plot(xs, history.accuracy, marker=".", label=label)
    acc_ax.set(xlabel=x, ylabel="held-out accuracy", ylim=(0, 1))
    cost_ax.plot(xs, history.cost, marker=".", label=label)
    cost_ax.set(xlabel=x, ylabel="training cost (quadratic)")
    if label is not None:
        cost_ax.legend(fontsize=8)
    for ax in axes:
        ax.grid(alpha=0.3)
    return axes


def plot_eps_sweep(eps, relative_error, ax=None, title: str = ""):
    """Relative error of a central finite difference against ``eps``, log-log (notebook 01).

    The V: on the right the truncation error falls like eps^2, on the left float rounding
    (about u * C / eps) grows like 1/eps. Both are drawn as guides through the measured points.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 3.4))
    eps, err = np.asarray(eps, dtype=float), np.asarray(relative_error, dtype=float)
    ax.loglog(eps, err, "o-", label="measured")
    best = int(np.argmin(err))
    right, left = eps >= eps[best], eps <= eps[best]
    ax.loglog(eps[right], err[right].max() * (eps[right] / eps[right].max()) ** 2, "--",
              alpha=0.6, label=r"$\propto \epsilon^2$ (truncation)")
    ax.loglog(eps[left], err[left].max() * (eps[left].min() / eps[left]), ":",
              alpha=0.8, label=r"$\propto 1/\epsilon$ (rounding)")
    ax.set(xlabel=r"$\epsilon$", ylabel="relative error", title=title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return ax


def plot_accuracy_grid(grid, etas, batch_sizes, ax=None, title: str = ""):
    """Heatmap of held-out accuracy, one row per mini-batch size and one column per eta (from
    ``nnlib.sgd.accuracy_grid``), each cell labelled with its number (notebook 01)."""
    import matplotlib.pyplot as plt
    import numpy as np

    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 2.6))
    grid = np.asarray(grid, dtype=float)
    ax.imshow(grid, cmap="viridis", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(etas)), [f"{e:g}" for e in etas])
    ax.set_yticks(range(len(batch_sizes)), [str(m) for m in batch_sizes])
    for (i, j), v in np.ndenumerate(grid):
        ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=8,
                color="black" if v > 0.5 else "white")
    ax.set(xlabel="eta", ylabel="mini-batch size m", title=title)
    return ax


# ---- 02 spaCy pipelines --------------------------------------------------------------------


def plot_throughput(tokens_per_second: dict[str, float], ax=None, title: str = ""):
    """Horizontal bars of tokens per second, one per way of running a pipeline (notebook 02).

    The rates count spaCy tokens (punctuation included), not words.

    ``tokens_per_second`` maps a label ("loop of nlp(text)", "nlp.pipe", ...) to a rate; bars keep
    the dict's order from top to bottom and carry their value and its ratio to the first entry
    (the baseline), so the speed-ups can be read off directly.
    """
    import matplotlib.pyplot as plt

    if not tokens_per_second or min(tokens_per_second.values()) <= 0:
        raise ValueError("plot_throughput needs at least one positive rate, e.g. "
                         "{'loop of nlp(text)': 2800.0, 'nlp.pipe(texts)': 6600.0}")
    if ax is None:
        _, ax = plt.subplots(figsize=(7.5, 0.6 + 0.55 * len(tokens_per_second)))
    base = next(iter(tokens_per_second.values()))
    labels = list(tokens_per_second)[::-1]
    values = [tokens_per_second[k] for k in labels]
    bars = ax.barh(labels, values, color=palette.KEPT)
    ax.bar_label(bars, labels=[f"{v:,.0f}  ({v / base:.1f}x)" for v in values], padding=3,
                 fontsize=9)
    ax.set_xlabel("tokens per second (higher is better)")
    ax.set_xlim(0, max(values) * 1.3)
    if title:
        ax.set_title(title)
    return ax


# ---- 03 Loading Llama ----------------------------------------------------------------------

_SHARD_COLORS = palette.SERIES


def plot_memory_needs(rows, devices: dict[str, float], dtypes=("fp32", "bf16", "int8", "int4"),
                      ax=None, title: str = ""):
    """Grouped bars: GB of weights per model (groups) and dtype (bars), log scale, with one dashed
    line per device's memory, so "does it fit?" is read off by eye.

    ``rows`` are dicts with ``model``, ``dtype`` and ``weights_GB`` (``nnlib.llama.memory_table``);
    ``devices`` maps a label ("laptop, 16 GB RAM") to its memory in GB.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    if ax is None:
        _, ax = plt.subplots(figsize=(9, 4.5))
    models = list(dict.fromkeys(r["model"] for r in rows))
    gb = {(r["model"], r["dtype"]): r["weights_GB"] for r in rows}
    width = 0.8 / len(dtypes)
    x = np.arange(len(models))
    for i, dt in enumerate(dtypes):
        values = [gb[(m, dt)] for m in models]
        bars = ax.bar(x + (i - (len(dtypes) - 1) / 2) * width, values, width, label=dt,
                      color=_SHARD_COLORS[i % len(_SHARD_COLORS)])
        ax.bar_label(bars, labels=[f"{v:.0f}" if v >= 10 else f"{v:.1f}" for v in values],
                     fontsize=7, padding=1)
    for label, limit in devices.items():
        ax.axhline(limit, color="0.3", linestyle="--", linewidth=0.8)
        ax.text(len(models) - 0.45, limit, f" {label}", va="center", fontsize=8, color="0.2")
    ax.set_yscale("log")
    ax.set_xticks(x, [f"{m}" for m in models])
    ax.set_xlim(-0.5, len(models) + 0.9)
    ax.set_ylabel("GB for the weights (log scale)")
    ax.legend(title="dtype", fontsize=8, loc="upper left")
    if title:
        ax.set_title(title)
    return ax


def plot_kv_cache(seq_lens, curves: dict[str, list[float]], ax=None, title: str = ""):
    """KV-cache GB against ``max_seq_len`` (log-log), one line per (model, batch) label. The cache
    is allocated for ``max_batch_size x max_seq_len`` up front, whatever the prompt's length.
    Lines alternate solid and dashed so that two curves with equal values both stay visible."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    for i, (label, gb) in enumerate(curves.items()):
        ax.plot(seq_lens, gb, marker=".", label=label, linestyle="-" if i % 2 == 0 else "--",
                linewidth=2.5 if i % 2 == 0 else 1.5)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("max_seq_len (tokens)")
    ax.set_ylabel("KV cache, GB")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return ax


def plot_mp_split(items, n_shards: int = 2, axes=None, title: str = ""):
    """How a model-parallel checkpoint cuts each weight: one panel per weight, a rectangle of its
    (rows, cols) shape coloured by shard. Stripes across the rows mean "split on dim 0" (each shard
    has some output features), stripes across the columns mean "split on dim 1" (some input
    features); a hatched, grey bar is a 1-D weight copied whole into every shard.

    ``items`` are ``(name, shape, axis)`` with ``axis`` 0, 1 or None (copied). Rectangles keep the
    shape's proportions, squeezed to at most 4:1 so thin matrices stay visible.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    items = list(items)
    if axes is None:
        cols = min(5, len(items))
        rows = -(-len(items) // cols)
        _, axes = plt.subplots(rows, cols, figsize=(2.3 * cols, 2.5 * rows))
    flat = list(getattr(axes, "flat", [axes]))
    for ax, (name, shape, axis) in zip(flat, items):
        if len(shape) == 1:
            h, w = 0.12, 1.0
        else:
            r, c = float(shape[0]), float(shape[1])
            h, w = (1.0, max(c / r, 0.25)) if r >= c else (max(r / c, 0.25), 1.0)
        x0, y0 = (1 - w) / 2, (1 - h) / 2
        if axis is None:
            ax.add_patch(Rectangle((x0, y0), w, h, facecolor="0.85", edgecolor="0.3", hatch="///"))
            how = f"copied to all {n_shards}"
        else:
            for k in range(n_shards):
                color = _SHARD_COLORS[k % len(_SHARD_COLORS)]
                if axis == 0:  # rows: shard 0 on top, as in the tensor's printout
                    piece = Rectangle((x0, y0 + h - (k + 1) * h / n_shards), w, h / n_shards)
                else:
                    piece = Rectangle((x0 + k * w / n_shards, y0), w / n_shards, h)
                piece.set(facecolor=color, edgecolor="white", linewidth=1.5)
                ax.add_patch(piece)
            how = f"split on dim {axis}"
        ax.set_xlim(-0.05, 1.05)
        ax.set_ylim(-0.05, 1.05)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        for side in ax.spines.values():
            side.set_visible(False)
        ax.set_title(f"{name}\n{tuple(shape)}", fontsize=8)
        ax.set_xlabel(how, fontsize=8)
    for ax in flat[len(items):]:
        ax.axis("off")
    if title:
        flat[0].figure.suptitle(title, fontsize=10)
    return axes


# ---- 04 Step-through generation ------------------------------------------------------------

# Shapes: ``labels`` are token texts, ``probs`` plain sequences (lists, numpy or torch on the CPU).

_KEPT, _DROPPED, _CHOSEN = palette.KEPT, palette.DROPPED, palette.CHOSEN


def _np(x):
    import numpy as np

    return np.asarray(x.detach().cpu() if hasattr(x, "detach") else x, dtype=float)


def plot_token_grid(tokens, input_text_mask=None, pad_id: int = -1, labels=None, ax=None,
                    title: str = ""):
    """Meta's ``tokens`` tensor (B, total_len) as a grid: prompt positions (``input_text_mask``
    True) blue, generated positions orange, ``pad_id`` positions empty. Each cell shows its id, or
    ``labels[b][t]`` when given. Rows are the batch, columns the positions."""
    import matplotlib.pyplot as plt
    import numpy as np

    tok = np.asarray(_np(tokens), dtype=int)
    mask = np.asarray(_np(input_text_mask), dtype=bool) if input_text_mask is not None else tok != pad_id
    bsz, total = tok.shape
    if ax is None:
        _, ax = plt.subplots(figsize=(min(14, 1.2 + 0.62 * total), 0.8 + 0.55 * bsz))
    kind = np.where(mask, 2, np.where(tok == pad_id, 0, 1))  # 0 pad, 1 generated, 2 prompt
    from matplotlib.colors import ListedColormap

    ax.imshow(kind, cmap=ListedColormap([palette.EMPTY, _CHOSEN, _KEPT]), vmin=0, vmax=2, aspect="auto")
    for b in range(bsz):
        for t in range(total):
            text = str(labels[b][t]) if labels is not None else str(tok[b, t])
            ax.text(t, b, text, ha="center", va="center", fontsize=7.5,
                    color="white" if kind[b, t] else "#888888")
    ax.set_xticks(range(total))
    ax.set_yticks(range(bsz), [f"prompt {b}" for b in range(bsz)])
    ax.set_xticks(np.arange(-0.5, total), minor=True)
    ax.set_yticks(np.arange(-0.5, bsz), minor=True)
    ax.grid(which="minor", color="white", linewidth=1.5)
    ax.tick_params(which="both", length=0, labelsize=8)
    ax.set_xlabel("position (cur_pos)")
    ax.set_title(title or "tokens: blue = prompt (input_text_mask), orange = generated, "
                 f"grey = pad_id ({pad_id})", fontsize=9)
    return ax


class NextTokenBars:
    """The next-token candidates as horizontal bars, most likely on top, drawn once and then
    updated in place (a widget redraws it on every slider move, so it must be fast): blue = kept
    by the nucleus (or any rule whose boolean ``kept`` you pass), grey = dropped, a dashed line at
    the cut, and the bar at index ``chosen`` orange with "<- chosen" after its value.

    ``NextTokenBars(ax, n)`` makes ``n`` bars; ``update(labels, probs, kept, chosen, title)``
    takes one entry per bar, top first. ``bars`` are the matplotlib rectangles (their widths are
    the probabilities drawn)."""

    def __init__(self, ax, n: int, xlabel: str = "probability after temperature",
                 cut_label: str = "nucleus cut") -> None:
        if n < 1:
            raise ValueError(f"NextTokenBars needs at least one bar, got n={n}.")
        self.ax, self.n = ax, n
        self.y = list(range(n))[::-1]  # candidate 0 at the top
        self.bars = ax.barh(self.y, [0.0] * n, color=_KEPT)
        self.values = [ax.text(0, y, "", va="center", ha="left", fontsize=7) for y in self.y]
        self.cut = ax.axhline(0, color=palette.CUT, linestyle="--", linewidth=1.2, visible=False)
        self.cut_label = cut_label
        self.cut_text = ax.text(0.99, 0, cut_label, color=palette.CUT, va="bottom", ha="right",
                                fontsize=8, transform=ax.get_yaxis_transform(), visible=False)
        ax.set_yticks(self.y, [""] * n)
        ax.tick_params(axis="y", labelsize=8)
        ax.tick_params(axis="x", labelsize=7)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.set_ylim(-0.6, n - 0.4)
        # The title is a plain text in axes coordinates: ``set_title`` would re-measure every tick
        # label to place itself on each redraw, the largest cost of an update.
        self.title = ax.text(0.0, 1.02, "", transform=ax.transAxes, fontsize=9, va="bottom")
        self._labels: list[str] = []

    def update(self, labels, probs, kept, chosen=None, title: str = "",
               chosen_note: str = "", n_kept_total: int | None = None) -> NextTokenBars:
        """Redraw with one entry per bar; ``chosen_note`` is added after "<- chosen" (e.g. its
        rank, when the chosen token is shown below candidates it does not follow).
        ``n_kept_total``: how many tokens the nucleus keeps in all; when that is more than the
        bars drawn, the cut lies below them and a note at the bottom says at which rank."""
        p, keep = _np(probs), [bool(k) for k in kept]
        if not (len(labels) == len(p) == len(keep) == self.n):
            raise ValueError(f"labels, probs and kept must have one entry per bar ({self.n}); "
                             f"got {len(labels)}, {len(p)}, {len(keep)}.")
        top = max(float(p.max()), 1e-9)
        for i, (bar, text, v) in enumerate(zip(self.bars, self.values, p)):
            bar.set_width(v)
            bar.set_facecolor(_CHOSEN if i == chosen else (_KEPT if keep[i] else _DROPPED))
            bar.set_edgecolor("black" if i == chosen else "none")
            text.set_x(v + top * 0.01)
            text.set_text(f"{v:.3f}" + (f"  <- chosen{chosen_note}" if i == chosen else ""))
            text.set_color(palette.CHOSEN_TEXT if i == chosen else "black")
            text.set_fontweight("bold" if i == chosen else "normal")
        if [repr(s) for s in labels] != self._labels:  # new tick labels only when they change
            self._labels = [repr(s) for s in labels]
            self.ax.set_yticklabels(self._labels, family="monospace")
        n_kept = sum(keep)
        show_cut = 0 < n_kept < self.n and all(keep[:n_kept])  # a prefix kept: draw the cut
        self.cut.set_visible(show_cut)
        self.cut_text.set_visible(show_cut)
        if show_cut:
            where = self.y[n_kept - 1] - 0.5
            self.cut.set_ydata([where, where])
            self.cut_text.set_y(where)
            self.cut_text.set_text(self.cut_label)
        elif n_kept_total is not None and n_kept_total > n_kept:
            # Every drawn candidate is kept: the cut is further down the ranking, out of sight.
            self.cut_text.set_visible(True)
            self.cut_text.set_y(self.y[-1] - 0.5)
            self.cut_text.set_text(f"{self.cut_label} further down, after rank {n_kept_total}")
        self.ax.set_xlim(0, top * 1.6)
        self.title.set_text(title)
        return self


def plot_next_token_bars(labels, probs, kept, chosen=None, ax=None, title: str = "",
                         xlabel: str = "probability after temperature",
                         cut_label: str = "nucleus cut"):
    """``NextTokenBars`` drawn once: candidates top first, kept blue, dropped grey, the cut dashed
    (labelled ``cut_label``), ``chosen`` (an index into the lists) orange. Returns the axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 0.9 + 0.28 * len(labels)))
    NextTokenBars(ax, len(labels), xlabel, cut_label).update(labels, probs, kept, chosen, title)
    return ax


def plot_temperature_sweep(logits, probs_by_temperature, entropy_curve, labels, n_top: int = 8,
                           axes=None):
    """Left: the probabilities of the ``n_top`` most likely tokens (by ``logits`` (V,)) at each
    temperature of ``probs_by_temperature`` ({T: softmax(logits / T)}, each (V,)): temperature
    never reorders them, it only sharpens or flattens. Right: ``entropy_curve`` = (temperatures,
    entropy in bits) against T, with the temperatures of the left panel marked. ``labels`` maps
    a token id to its text. The caller computes the numbers (``nnlib.llama.sampling``)."""
    import matplotlib.pyplot as plt
    import numpy as np

    z = _np(logits)
    order = np.argsort(-z, kind="stable")[:n_top]
    temperatures = list(probs_by_temperature)
    grid, bits = _np(entropy_curve[0]), _np(entropy_curve[1])
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(11, 3.6), gridspec_kw={"width_ratios": [1.5, 1]})
    left, right = axes
    width = 0.8 / len(temperatures)
    for k, t in enumerate(temperatures):
        left.bar(np.arange(n_top) + (k - (len(temperatures) - 1) / 2) * width,
                 _np(probs_by_temperature[t])[order], width=width, label=f"T = {t:g}")
    left.set_xticks(range(n_top), [repr(labels[i]) for i in order], rotation=40, ha="right",
                    fontsize=8, family="monospace")
    left.set_ylabel("probability")
    left.set_title("softmax(logits / T) of the most likely tokens", fontsize=9)
    left.legend(fontsize=8)
    right.plot(grid, bits, color=_KEPT)
    right.scatter(temperatures, np.interp(temperatures, grid, bits), color=_CHOSEN, zorder=3)
    right.axhline(np.log2(len(z)), color="grey", linestyle=":", linewidth=1)
    right.text(0.02, np.log2(len(z)), f"uniform over {len(z)}: {np.log2(len(z)):.1f} bits",
               va="bottom", fontsize=8, color="grey")
    right.set(xlabel="temperature T", ylabel="entropy (bits)")
    right.set_title("how unsure the next token is", fontsize=9)
    right.grid(alpha=0.3)
    return axes


def plot_nucleus(sorted_probs, kept, p: float, labels=None, n_show=None, ax=None):
    """Meta's ``sample_top_p`` picture: the probabilities sorted high to low (bars), their
    running sum (line), the threshold ``p`` (dotted) and the kept tokens in blue (``kept``, a
    boolean per sorted entry, e.g. ``sampling.nucleus(probs, p)[2][0]``): a token is kept while
    the mass *before* it is at most ``p``, so the one that crosses ``p`` is kept too.
    ``n_show`` bars (default: the nucleus and 10 more, at most 100); token labels under the bars
    when there are at most 40."""
    import matplotlib.pyplot as plt
    import numpy as np

    full = _np(sorted_probs)
    full_cum = np.cumsum(full)
    full_keep = _np(kept).astype(bool)
    n_kept = int(full_keep.sum())
    if n_show is None:
        n_show = min(len(full), n_kept + 10, 100)
    q, cum, keep = full[:n_show], full_cum[:n_show], full_keep[:n_show]
    if ax is None:
        _, ax = plt.subplots(figsize=(10, 3.4))
    x = np.arange(len(q))
    ax.bar(x, q, color=[_KEPT if k else _DROPPED for k in keep])
    ax.set_ylabel("probability (sorted)")
    twin = ax.twinx()
    twin.plot(x, cum, color=_CHOSEN, marker=".", label="cumulative sum")
    twin.axhline(p, color=palette.CUT, linestyle=":", label=f"top_p = {p:g}")
    twin.set_ylim(0, 1.05)
    twin.set_ylabel("cumulative sum")
    twin.legend(loc="center right", fontsize=8)
    if labels is not None and n_show <= 40:
        ax.set_xticks(x, [repr(s) for s in list(labels)[:n_show]], rotation=60, ha="right",
                      fontsize=7, family="monospace")
    else:
        ax.set_xlabel("rank")
    ax.set_title(f"nucleus for top_p = {p:g}: {n_kept} of {len(full)} tokens kept (blue); "
                 f"the first {n_show} shown", fontsize=9)
    return ax


def plot_cache_speed(lengths, with_cache, without_cache, ax=None):
    """Tokens per second against the number of generated tokens, with and without the KV cache
    (one line each), and the ratio written at the longest length."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 3.4))
    ax.plot(lengths, with_cache, marker="o", color=_KEPT, label="KV cache (prev_pos)")
    ax.plot(lengths, without_cache, marker="o", color=_DROPPED, label="no cache (whole prefix)")
    ax.annotate(f"{with_cache[-1] / without_cache[-1]:.1f}x", (lengths[-1], with_cache[-1]),
                textcoords="offset points", xytext=(-10, 8), ha="right", fontsize=9)
    ax.set(xlabel="tokens generated", ylabel="tokens per second (higher is better)")
    ax.set_ylim(0, max(with_cache) * 1.2)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax


# ---- 05 Inside one step: the KV cache and one attention row --------------------------------


def plot_cache_fill(written_by, snapshot_titles, axes=None):
    """Which positions of each layer's ``cache_k`` hold something, after each model call.

    ``written_by`` is an int array (snapshots, n_layers, positions): the index of the call that
    wrote that slot, -1 where the slot is still empty. One panel per snapshot, layers as rows and
    cache positions as columns, so prefill shows as one wide block and each decode step as one
    new column, in every layer at once."""
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.colors import ListedColormap

    written_by = np.asarray(written_by, dtype=int)
    n_snap, n_layers, n_pos = written_by.shape
    if len(snapshot_titles) != n_snap:
        raise ValueError(f"{n_snap} snapshots but {len(snapshot_titles)} titles: give one title each.")
    if axes is None:
        _, axes = plt.subplots(n_snap, 1, figsize=(min(12, 2 + 0.3 * n_pos), 0.8 + 1.35 * n_snap),
                               sharex=True, squeeze=False, layout="constrained")
        axes = axes[:, 0]
    n_calls = max(int(written_by.max()) + 1, 1)
    colours = [palette.EMPTY, _KEPT] + [plt.cm.Oranges(0.35 + 0.55 * k / max(n_calls - 2, 1))
                                    for k in range(n_calls - 1)]
    cmap = ListedColormap(colours[: n_calls + 1])
    for ax, grid, title in zip(axes, written_by, snapshot_titles):
        ax.imshow(grid + 1, cmap=cmap, vmin=0, vmax=n_calls, aspect="auto", interpolation="nearest")
        for (layer, pos), call in np.ndenumerate(grid):
            if call >= 0:
                ax.text(pos, layer, str(call), ha="center", va="center", fontsize=6, color="white")
        ax.set_yticks(range(n_layers), [f"layer {i}" for i in range(n_layers)], fontsize=7)
        ax.set_xticks(np.arange(-0.5, n_pos), minor=True)
        ax.set_yticks(np.arange(-0.5, n_layers), minor=True)
        ax.grid(which="minor", color="white", linewidth=1)
        ax.tick_params(which="both", length=0, labelsize=7)
        ax.set_title(title, fontsize=9, loc="left")
    axes[-1].set_xticks(range(n_pos))
    axes[-1].set_xlabel("cache position (the number in a cell: the call that wrote it; "
                        "0 = prefill, blue)")
    return axes


def plot_attention_row(weights, labels, ax=None, title: str = "", kv_group: int = 1):
    """One query's attention over the positions it may see: ``weights`` (heads, T), each row a
    softmax summing to 1, drawn as a heat map with the token texts ``labels`` (T) under the
    columns and a last row with the mean over heads. With grouped-query attention, ``kv_group``
    query heads share one key/value head; lines separate the groups."""
    import matplotlib.pyplot as plt
    import numpy as np

    w = _np(weights)
    if w.ndim != 2 or w.shape[1] != len(labels):
        raise ValueError(f"weights must be (heads, {len(labels)}) for {len(labels)} labels, got "
                         f"shape {w.shape}.")
    grid = np.vstack([w, w.mean(axis=0, keepdims=True)])
    n_heads, n_pos = w.shape
    if ax is None:
        _, ax = plt.subplots(figsize=(min(14, 2 + 0.45 * n_pos), 1.2 + 0.3 * (n_heads + 1)))
    ax.imshow(grid, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    for (h, t), v in np.ndenumerate(grid):
        if v >= 0.1:
            ax.text(t, h, f"{v:.1f}", ha="center", va="center", fontsize=6,
                    color="white" if v > 0.5 else "black")
    for g in range(kv_group, n_heads, kv_group):
        ax.axhline(g - 0.5, color=palette.CHOSEN, linewidth=1)
    ax.axhline(n_heads - 0.5, color="black", linewidth=1.5)
    ax.set_yticks(range(n_heads + 1), [f"head {h}" for h in range(n_heads)] + ["mean"], fontsize=7)
    ax.set_xticks(range(n_pos), labels, rotation=90, fontsize=7, family="monospace")
    ax.tick_params(length=0)
    ax.set_title(title, fontsize=9)
    return ax
