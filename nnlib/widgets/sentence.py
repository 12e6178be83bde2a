"""``SentenceExplorer`` (notebook 02): type an English or Japanese sentence, see what each pipeline
component adds to it, and how three tokenizers cut it.

The work is done by plain methods (``analyse``, ``set_text``, ``set_component``) that return or
store a ``SentenceAnalysis``, so tests drive it without a browser; the ipywidgets tree is
``.widget`` and only shows what ``analysis`` holds.
"""
from __future__ import annotations

import html
import time
import unicodedata
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

#: The token table's columns: (heading, the ``Doc.has_annotation`` name spaCy uses for it).
#: A column that no running component fills comes back empty, and the table says so.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("lemma_", "LEMMA"), ("pos_", "POS"), ("tag_", "TAG"), ("morph", "MORPH"),
    ("dep_", "DEP"), ("head", "DEP"), ("ent_type_", "ENT_IOB"),
)


def is_japanese(text: str) -> bool:
    """True if ``text`` contains kana or CJK ideographs: then the Japanese pipeline reads it.

    Judged from the Unicode names of the characters, so it needs no model and takes microseconds.
    """
    for ch in text:
        name = unicodedata.name(ch, "")
        if name.startswith(("HIRAGANA", "KATAKANA", "CJK UNIFIED IDEOGRAPH", "CJK SYMBOLS")):
            return True
    return False


def llama_pieces(tokenizer: Any, text: str) -> list[str]:
    """The pieces a Llama tokenizer cuts ``text`` into (no BOS/EOS).

    SentencePiece tokenizers name their pieces (``▁the``, ``<0xE6>``); the others (tiktoken,
    ``tokenizer.json``) are shown by decoding each id on its own.
    """
    ids = tokenizer.encode(text, bos=False, eos=False)
    if hasattr(tokenizer, "id_to_piece"):
        return [tokenizer.id_to_piece(i) for i in ids]
    return [tokenizer.decode([i]) for i in ids]


def best_time(nlp: Any, text: str, budget_ms: float = 40.0, most: int = 5) -> tuple[Any, float]:
    """``(nlp(text), milliseconds)``: the fastest of a few runs, as many as fit in ``budget_ms``
    (at least one, at most ``most``). One run of a 10 ms pipeline is noisy enough to make
    switching a component off look slower; the minimum of several is not. A slow pipeline runs
    once, so an update stays quick."""
    best, doc, spent, runs = float("inf"), None, 0.0, 0
    while runs < most and (runs == 0 or spent + best < budget_ms):
        start = time.perf_counter()
        doc = nlp(text)
        ms = (time.perf_counter() - start) * 1000
        best, spent, runs = min(best, ms), spent + ms, runs + 1
    return doc, best


def token_row(token: Any) -> dict[str, str]:
    """One row of the token table: the token's text and the attribute of every column."""
    return {"text": token.text, "lemma_": token.lemma_, "pos_": token.pos_, "tag_": token.tag_,
            "morph": str(token.morph), "dep_": token.dep_,
            "head": token.head.text if token.dep_ else "", "ent_type_": token.ent_type_}


@dataclass
class SentenceAnalysis:
    """Everything the explorer shows for one sentence under one choice of components.

    ``rows``: one dict per token (``token_row``). ``empty``: for each column, how many tokens
    have it empty (``n_tokens`` when no running component fills it; a column can have two
    sources: the attribute_ruler sets some ``pos_``, ``morph`` and ``lemma_`` values from the
    parser's ``dep_`` or the word itself, with the tagger off).
    ``annotated``: the columns for which ``Doc.has_annotation`` is true. ``ms`` is the time of
    ``nlp(text)`` with the chosen components, ``full_ms`` with the pipeline's default ones.
    ``warnings`` are spaCy's warnings during the run (e.g. W108: the lemmatizer found no POS).
    """

    text: str
    lang: str
    enabled: list[str]
    disabled: list[str]
    rows: list[dict[str, str]]
    empty: dict[str, int]
    annotated: list[str]
    spacy_words: list[str]
    ginza_words: list[str]
    llama_pieces: list[str]
    ms: float
    full_ms: float
    warnings: list[str] = field(default_factory=list)
    markup: str = ""

    @property
    def n_tokens(self) -> int:
        return len(self.rows)

    @property
    def empty_columns(self) -> list[str]:
        """Columns empty for every token: what switching components off took away."""
        return [name for name, _ in COLUMNS if self.rows and self.empty[name] == len(self.rows)]


class SentenceExplorer:
    """Type a sentence; see its token table, displaCy drawing and three tokenizations, live.

    ``SentenceExplorer(nlp_en, nlp_ja=None, tokenizer=None, text=...)``: the English pipeline
    (``load_pipeline("en")``), optionally GiNZA (``load_pipeline("ja")``) and a Llama tokenizer
    (``nnlib.llama.load_tokenizer``). A sentence with kana or kanji goes to GiNZA, any other to
    the English pipeline. Each component of that pipeline has a checkbox: switch one off and the
    table shows which columns went empty and how the time of ``nlp(text)`` changed.

    Controls, as attribute: CSS class (for a browser test), what:

    - ``text_box``: ``nnlib-sentence`` Text; the sentence (Enter or leaving the box updates)
    - ``checkboxes``: ``nnlib-components`` HBox of one Checkbox per component, each with the
      class ``nnlib-component-<name>``; ticked = the component runs
    - ``speed``: ``nnlib-speed`` HTML, the time with these components against all default ones
    - ``table``: ``nnlib-token-table`` HTML, one row per token, empty columns marked
    - ``words``: ``nnlib-words`` HTML, spaCy's words, GiNZA's words, the Llama pieces
    - ``drawing``: ``nnlib-drawing`` HTML, displaCy's dependency and entity pictures
    - ``widget``: ``nnlib-sentence-explorer`` VBox, all of the above

    State: ``analysis`` (the ``SentenceAnalysis`` on screen) and ``enabled`` ({lang: set of
    component names that run}). The pipelines themselves are never changed: each run uses
    ``nlp.select_pipes``, which restores them afterwards.
    """

    def __init__(self, nlp_en: Any, nlp_ja: Any = None, tokenizer: Any = None,
                 text: str = "Apple is looking at buying U.K. startup for $1 billion.") -> None:
        import ipywidgets as w

        if nlp_en is None or not hasattr(nlp_en, "pipe_names"):
            raise TypeError("SentenceExplorer needs a spaCy pipeline first: "
                            "SentenceExplorer(load_pipeline('en'), load_pipeline('ja'), tokenizer)")
        self.pipelines = {"en": nlp_en}
        if nlp_ja is not None:
            self.pipelines["ja"] = nlp_ja
        self.tokenizer = tokenizer
        self.enabled: dict[str, set[str]] = {lang: set(nlp.pipe_names)
                                             for lang, nlp in self.pipelines.items()}
        self._full_ms: dict[tuple[str, str], float] = {}  # (lang, text) -> default pipeline time
        for nlp in self.pipelines.values():
            nlp("warm up")  # a pipeline's first call is several times slower than the next ones
        self.analysis: SentenceAnalysis | None = None

        self.text_box = w.Text(value=text, description="sentence", continuous_update=False,
                               layout=w.Layout(width="95%"))
        self.checkboxes = w.HBox(layout=w.Layout(flex_flow="row wrap"))
        self.speed, self.table, self.words, self.drawing = w.HTML(), w.HTML(), w.HTML(), w.HTML()
        for widget, css in [(self.text_box, "sentence"), (self.checkboxes, "components"),
                            (self.speed, "speed"), (self.table, "token-table"),
                            (self.words, "words"), (self.drawing, "drawing")]:
            widget.add_class(f"nnlib-{css}")
        self.widget = w.VBox([self.text_box, self.checkboxes, self.speed, self.table, self.words,
                              self.drawing])
        self.widget.add_class("nnlib-sentence-explorer")
        self.text_box.observe(lambda change: self.set_text(change["new"]), names="value")
        self._shown_lang = ""
        self.set_text(text)

    # ---- logic, usable without a browser -----------------------------------------------------

    def language(self, text: str) -> str:
        """"ja" for text with kana or kanji when GiNZA was given, else "en"."""
        return "ja" if is_japanese(text) and "ja" in self.pipelines else "en"

    def components(self, lang: str) -> list[str]:
        """Every component of that pipeline, in order, including those off by default
        (English ``senter``)."""
        return list(self.pipelines[lang].component_names)

    def analyse(self, text: str, enabled: Sequence[str] | None = None) -> SentenceAnalysis:
        """Run the sentence's pipeline with only ``enabled`` components (default: the ticked ones)
        and collect what the explorer shows. Does not touch the widgets."""
        if not isinstance(text, str):
            raise TypeError(f"the sentence must be a str, got {type(text).__name__}")
        lang = self.language(text)
        nlp = self.pipelines[lang]
        chosen = set(self.enabled[lang] if enabled is None else enabled)
        unknown = sorted(chosen - set(nlp.component_names))
        if unknown:
            raise ValueError(f"{unknown} are not components of the {lang!r} pipeline; "
                             f"choose from {nlp.component_names}")
        order = [name for name in nlp.component_names if name in chosen]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with nlp.select_pipes(enable=order):
                doc, ms = best_time(nlp, text)
            markup = self._markup(doc)
        key = (lang, text)
        if order == list(nlp.pipe_names):  # the default components: that run was the full one
            self._full_ms[key] = ms
        if key not in self._full_ms:
            self._full_ms[key] = best_time(nlp, text)[1]
        rows = [token_row(t) for t in doc]
        return SentenceAnalysis(
            text=text, lang=lang, enabled=order,
            disabled=[name for name in nlp.component_names if name not in chosen],
            rows=rows, empty={name: sum(not r[name] for r in rows) for name, _ in COLUMNS},
            annotated=[name for name, attr in COLUMNS if doc.has_annotation(attr)],
            spacy_words=[t.text for t in self.pipelines["en"].make_doc(text)],
            ginza_words=([t.text for t in self.pipelines["ja"].tokenizer(text)]
                         if "ja" in self.pipelines else []),
            llama_pieces=llama_pieces(self.tokenizer, text) if self.tokenizer else [],
            ms=ms, full_ms=self._full_ms[key],
            warnings=sorted({str(w.message).split(". ")[0] + "." for w in caught
                             if "[W" in str(w.message)}),
            markup=markup)

    def set_text(self, text: str) -> SentenceAnalysis:
        """Analyse ``text`` with the ticked components and redraw (what typing does)."""
        if self.text_box.value != text:
            self.text_box.value = text  # the observer calls back here; the second call redraws
            return self.analysis
        self.analysis = self.analyse(text)
        self._redraw()
        return self.analysis

    def set_component(self, name: str, on: bool) -> SentenceAnalysis:
        """Switch one component of the current sentence's pipeline on or off and redraw."""
        lang = self.language(self.text_box.value)
        if name not in self.components(lang):
            raise ValueError(f"{name!r} is not a component of the {lang!r} pipeline; "
                             f"choose from {self.components(lang)}")
        (self.enabled[lang].add if on else self.enabled[lang].discard)(name)
        box = self._checkbox(name)
        if box is not None and box.value != on:
            box.value = on  # keeps the screen in step when called from code
        return self.set_text(self.text_box.value)

    # ---- what is shown -----------------------------------------------------------------------

    def _checkbox(self, name: str) -> Any:
        for box in self.checkboxes.children:
            if box.description == name:
                return box
        return None

    def _redraw(self) -> None:
        import ipywidgets as w

        a = self.analysis
        if a.lang != self._shown_lang:  # one checkbox per component of this sentence's pipeline
            boxes = []
            for name in self.components(a.lang):
                box = w.Checkbox(value=name in self.enabled[a.lang], description=name,
                                 indent=False, layout=w.Layout(width="auto", margin="0 12px 0 0"))
                box.add_class(f"nnlib-component-{name}")
                box.observe(lambda change, n=name: self._on_box(n, change["new"]), names="value")
                boxes.append(box)
            self.checkboxes.children = boxes
            self._shown_lang = a.lang
        self.speed.value = self._speed_html(a)
        self.table.value = self._table_html(a)
        self.words.value = self._words_html(a)
        self.drawing.value = a.markup

    def _on_box(self, name: str, on: bool) -> None:
        lang = self.language(self.text_box.value)
        if (name in self.enabled[lang]) != on:
            self.set_component(name, on)

    @staticmethod
    def _markup(doc: Any) -> str:
        """displaCy's pictures of ``doc``: the parse when a parser ran, the entities when an
        entity recognizer ran (a parse-less Doc would be drawn as a row of unlinked words)."""
        from nnlib.nlp import displacy_markup

        parts = []
        if doc.has_annotation("DEP"):
            parts.append(displacy_markup(doc, "dep", {"compact": True, "distance": 90}))
        if doc.has_annotation("ENT_IOB"):
            parts.append(displacy_markup(doc, "ent"))
        return "".join(parts) or "<i>no parser and no entity recognizer ran: nothing to draw</i>"

    @staticmethod
    def _speed_html(a: SentenceAnalysis) -> str:
        off = ", ".join(a.disabled) or "none"
        return (f"<b>{a.lang}</b> pipeline, {a.n_tokens} tokens: <code>nlp(text)</code> took "
                f"<b>{a.ms:.1f} ms</b> with these components, {a.full_ms:.1f} ms with the default "
                f"ones ({a.ms / max(a.full_ms, 1e-9):.2f}x). Off: {html.escape(off)}."
                + (f"<br>spaCy warned: {html.escape('; '.join(a.warnings))}" if a.warnings else ""))

    @staticmethod
    def _table_html(a: SentenceAnalysis) -> str:
        names = ["text"] + [name for name, _ in COLUMNS]
        empty = set(a.empty_columns)
        head = "".join(f"<th>{n}{' <i>(empty)</i>' if n in empty else ''}</th>" for n in names)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(row[n])}</td>" for n in names) + "</tr>"
                       for row in a.rows)
        return (f'<table class="nnlib-tokens" style="font-size:12px"><thead><tr>{head}</tr>'
                f"</thead><tbody>{body}</tbody></table>")

    @staticmethod
    def _words_html(a: SentenceAnalysis) -> str:
        def line(label: str, items: list[str]) -> str:
            cells = " ".join(f"<code>{html.escape(x)}</code>" for x in items)
            return f"<div><b>{label}</b> ({len(items)}): {cells}</div>"

        return (line("spaCy English words", a.spacy_words)
                + (line("GiNZA (Sudachi) words", a.ginza_words) if a.ginza_words else "")
                + (line("Llama pieces", a.llama_pieces) if a.llama_pieces else ""))

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)
