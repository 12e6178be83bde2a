"""Checkers for notebooks 02 (spaCy pipelines) and 02b (training, Japanese): each runs the
learner's function on cases it builds itself, compares with a reference computed here (by running
the pipeline the notebook passes, or thinc's own optimizers), prints one line of feedback that
names the mistake and returns a ``Verdict`` (truthy when right).

Each docstring names its exercise as the notebooks number them: "02 Exercise 3" is the third
exercise of notebook 02, "02b Exercise 1" the first of notebook 02b."""
from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from .verdict import Verdict, attempt, report

# The checkers take the learner's function and the pipeline the notebook loaded, and compare with
# a reference computed here on sentences they choose. spaCy is only touched through that pipeline.

_EN_SENTENCES = [
    "Apple is looking at buying U.K. startup for $1 billion.",
    "Three engineers in Tokyo trained 12 small models last week.",
    "The cat sat on the mat while two dogs slept.",
]


_PERCENT_SENTENCES = [
    "Sales rose 5 percent in May.",
    "About 12.5% of users left, and forty percent stayed.",
    "I have 3 cats and no percentages.",
    "Prices fell 7 pct, then rose 2 Percent.",
]
_PERCENT_REFERENCE = [{"LIKE_NUM": True}, {"LOWER": {"IN": ["percent", "%", "pct"]}}]


def check_percent_pattern(percent_pattern: Callable[[], list], nlp: Any) -> Verdict:
    """02 Exercise 4: ``percent_pattern()`` returns one Matcher pattern for "5 percent", "12.5%"."""
    from spacy.matcher import Matcher

    attempted, pattern = attempt(percent_pattern)
    if not attempted:
        return Verdict(False)

    def found(pat: list) -> list[list[str]]:
        matcher = Matcher(nlp.vocab)
        matcher.add("PERCENT", [pat])
        result = []
        for text in _PERCENT_SENTENCES:
            doc = nlp.make_doc(text)
            result.append([doc[s:e].text for _, s, e in matcher(doc)])
        return result

    try:
        got = found(pattern)
    except (ValueError, TypeError, KeyError) as exc:  # spaCy validates patterns when added
        return report(False, "", f"the Matcher did not accept the pattern ({type(exc).__name__}): "
                       "it must be a list of dicts, one per token")
    want = found(_PERCENT_REFERENCE)
    for text, g, w in zip(_PERCENT_SENTENCES, got, want):
        if g != w:
            return report(False, "", f"in {text!r} your pattern found {g}, expected {w}")
    return report(True, "One pattern, two tokens: a number-like token, then the unit.", "")


_CARDINAL_SENTENCES = _EN_SENTENCES + ["Google hired 40 people in Paris in 2023."]


def check_drop_cardinals(drop_cardinals: Callable[[Any], Any], placement: Callable[[], Any],
                         nlp: Any) -> Verdict:
    """02 Exercise 5 (debug): a component that removes CARDINAL entities, and where it goes.

    ``placement()`` returns the keyword arguments for ``nlp.add_pipe`` (``{"after": "ner"}``).
    The checker registers the function under a fresh name, adds it where ``placement`` says for
    the run and removes it again, so re-running an edited solution never collides in spaCy's
    registry. Each of the broken version's bugs gets its own hint.
    """
    from spacy.language import Language

    for text in _CARDINAL_SENTENCES:
        probe = nlp(text)
        try:
            attempted, out = attempt(drop_cardinals, probe)
        except (AttributeError, TypeError) as exc:
            return report(False, "", f"{exc}: doc.ents is a tuple, it has no remove/append. "
                           "Build a new list of the spans to keep and assign it: doc.ents = [...]")
        if not attempted:
            return Verdict(False)
        if out is None:
            return report(False, "", "the function returns None: a component must return the "
                           "Doc it was given (`return doc`), or the next component gets None")
        if out is not probe:
            return report(False, "", "a component must return the Doc it was given (`return doc`)")
    attempted, where = attempt(placement)
    if not attempted:
        return Verdict(False)
    if not isinstance(where, dict) or not set(where) <= {"before", "after", "first", "last"}:
        return report(False, "", "placement() should return add_pipe's keyword arguments, e.g. "
                       "{'last': True} or {'before': 'lemmatizer'}")
    name = f"nnlib_exercise_drop_cardinals_{uuid.uuid4().hex}"
    Language.component(name, func=drop_cardinals)
    try:
        nlp.add_pipe(name, **where)
    except ValueError as exc:
        return report(False, "", f"add_pipe refused {where}: {str(exc).splitlines()[0][:120]}")
    try:
        position, ner = nlp.pipe_names.index(name), nlp.pipe_names.index("ner")
        for text in _CARDINAL_SENTENCES:
            with nlp.select_pipes(disable=[name]):
                full = [(e.text, e.label_) for e in nlp(text).ents]
            want = [ent for ent in full if ent[1] != "CARDINAL"]
            got = [(e.text, e.label_) for e in nlp(text).ents]
            if got != want and position < ner:
                return report(False, "", f"your component runs before the ner (position "
                               f"{position}, the ner {ner}): there are no entities yet "
                               "to drop, and the ner adds the CARDINALs after it. Place it after "
                               "'ner'")
            if got != want:
                return report(False, "", f"in {text!r} the pipeline kept {got}, expected {want}")
    finally:
        nlp.remove_pipe(name)
    return report(True, "A filter runs after the component whose output it filters, and returns "
                  "the Doc.", "")


# ---- notebook 02: the attribute_ruler, and which columns go empty ------------------------------

_PARSER_SENTENCE = "There is a dog, but it has no name and I do not know it."


def _pos_changes(nlp: Any, text: str) -> dict[str, tuple[str, str, str]]:
    """{word: (pos_ with the parser, pos_ without it, dep_)} for the tokens whose pos_ changes."""
    with_parser = nlp(text)
    with nlp.select_pipes(disable=["parser"]):
        without = nlp(text)
    return {a.text: (a.pos_, b.pos_, a.dep_) for a, b in zip(with_parser, without)
            if a.pos_ != b.pos_}


def _dep_reads(nlp: Any, doc: Any, i: int) -> list[tuple[str, str]]:
    """The (token text, its dep_) that the attribute_ruler's DEP-reading patterns read when they
    set token ``i`` of ``doc``: e.g. ``is`` after an expletive ``There`` is decided by the pattern
    ``[{"DEP": "expl"}, {"LOWER": {"IN": [..., "is", ...]}}]``, which reads the dep_ of ``There``."""
    from spacy.matcher import Matcher

    read: list[tuple[str, str]] = []
    for entry in nlp.get_pipe("attribute_ruler").patterns:
        for pattern in entry["patterns"]:
            if not any("DEP" in token for token in pattern) or any("OP" in t for t in pattern):
                continue
            matcher = Matcher(nlp.vocab)
            matcher.add("P", [pattern])
            for _, start, _end in matcher(doc):
                if start + (entry.get("index", 0) % len(pattern)) == i:
                    read += [(doc[start + k].text, doc[start + k].dep_)
                             for k, token in enumerate(pattern) if "DEP" in token]
    return list(dict.fromkeys(read))


def check_pos_without_parser(pos_without_parser: Callable[[], Any], nlp: Any) -> Verdict:
    """02 Exercise 2 (predict): which tokens of ``_PARSER_SENTENCE`` change ``pos_`` when the
    parser is off, and to what. The reference is measured: the pipeline is run with and without
    its parser (the tagger's ``tag_`` is the same either way; only the attribute_ruler's patterns
    that read ``DEP`` can differ)."""
    attempted, got = attempt(pos_without_parser)
    if not attempted:
        return Verdict(False)
    if not isinstance(got, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                            for k, v in got.items()):
        return report(False, "", "return a dict {word: its pos_ without the parser}, e.g. "
                       "{'likes': 'AUX'}, with only the words whose pos_ changes")
    changes = _pos_changes(nlp, _PARSER_SENTENCE)
    doc = nlp(_PARSER_SENTENCE)
    words = {t.text: t for t in doc}
    unknown = sorted(set(got) - set(words))
    if unknown:
        return report(False, "", f"{unknown} are not tokens of {_PARSER_SENTENCE!r}")
    for word in got:
        if word not in changes:
            t = words[word]
            return report(False, "", f"{word!r} keeps pos_ {t.pos_} without the parser: no "
                           f"pattern that reads DEP decides it (its tag_ {t.tag_} does)")
    for word, (before, after, _dep) in changes.items():
        if word not in got:
            read = _dep_reads(nlp, doc, words[word].i)
            which = (", ".join(f"the dep_ of {text!r} ({dep})" for text, dep in read)
                     if read else "a dep_")
            return report(False, "", f"{word!r} changes too: with the parser it is {before}, "
                           f"set by an attribute_ruler pattern that reads {which}; without the "
                           f"parser it is {after}")
        if got[word] != after:
            return report(False, "", f"without the parser {word!r} is {after}, not {got[word]}: "
                           f"with no dep_ the pattern for its tag_ {words[word].tag_} decides")
    moved = ", ".join(f"{w} {a} -> {b}" for w, (a, b, _) in changes.items())
    return report(True, f"{moved}: these lose the dep_ an attribute_ruler pattern reads.", "")


#: The explorer's columns (``nnlib.widgets.sentence.COLUMNS``) and the sentence they are read on.
_COLUMNS = ("lemma_", "pos_", "tag_", "morph", "dep_", "head", "ent_type_")
_COLUMN_SENTENCE = "I have a car in London and she did her homework on Monday."
_COLUMN_COMPONENTS = ("tagger", "parser", "attribute_ruler", "lemmatizer", "ner")
_FILLED_BY = {"lemma_": "the lemmatizer and the attribute_ruler both set lemmas",
              "pos_": "the attribute_ruler maps tag_ to pos_", "morph": "the attribute_ruler maps "
              "tag_ to morph", "tag_": "the tagger sets it", "dep_": "the parser sets it",
              "head": "the parser sets it", "ent_type_": "the ner sets it"}


def _filled(nlp: Any, text: str, off: str) -> dict[str, list[str]]:
    """{column: the tokens that have a value in it} with component ``off`` disabled."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # W108: the lemmatizer without POS, part of the lesson
        with nlp.select_pipes(disable=[off]):
            doc = nlp(text)
    values = {"lemma_": lambda t: t.lemma_, "pos_": lambda t: t.pos_, "tag_": lambda t: t.tag_,
              "morph": lambda t: str(t.morph), "dep_": lambda t: t.dep_,
              "head": lambda t: t.head.text if t.dep_ else "", "ent_type_": lambda t: t.ent_type_}
    return {col: [t.text for t in doc if get(t)] for col, get in values.items()}


def check_empty_columns(empty_columns: Callable[[str], Any], nlp: Any) -> Verdict:
    """02 Exercise 7 (predict): for each component switched off, which explorer columns are empty
    for *every* token of ``_COLUMN_SENTENCE``. Measured by running the pipeline without it; the
    hint names the tokens that still have a value, and the component that gave it to them."""
    sources = {("tagger", "pos_"): "the attribute_ruler sets POS from the parser's dep_ for some "
                                   "verbs (have/did as main verbs), with no tag_",
               ("tagger", "morph"): "an attribute_ruler pattern reads LOWER and DEP (I as nsubj)",
               ("tagger", "lemma_"): "the lemmatizer still writes one (the lowercased text, "
                                     "with warning W108)",
               ("lemmatizer", "lemma_"): "the attribute_ruler sets LEMMA for a list of "
                                         "words (70 patterns: pronouns, be/have/do, "
                                         "contractions such as n't -> not and ca -> can)",
               ("attribute_ruler", "lemma_"): "the lemmatizer writes the lowercased text when "
                                              "there is no POS (warning W108)"}
    for component in _COLUMN_COMPONENTS:
        attempted, got = attempt(empty_columns, component)
        if not attempted:
            return Verdict(False)
        names = _names(got)
        if names is None:
            return report(False, "", f"empty_columns({component!r}) should return a set of "
                           f"column names from {list(_COLUMNS)}")
        unknown = sorted(names - set(_COLUMNS))
        if unknown:
            return report(False, "", f"{unknown} are not columns: use {list(_COLUMNS)}")
        filled = _filled(nlp, _COLUMN_SENTENCE, component)
        want = {col for col in _COLUMNS if not filled[col]}
        for col in sorted(names - want):
            why = sources.get((component, col), _FILLED_BY[col])
            return report(False, "", f"with {component} off, {col} is not empty: "
                           f"{filled[col][:6]} still have one, because {why}")
        for col in sorted(want - names):
            return report(False, "", f"with {component} off, {col} is empty for every token: "
                           f"{component} is the only component that fills it here")
    return report(True, "tag_, dep_/head, pos_+morph and ent_type_ each have one source; "
                  "lemma_ has two, so no single component empties it.", "")


_JA_SENTENCES = ["猫が静かに庭を歩いていた。", "東京で新しい辞書を買いました。", "明日は早く起きたい。"]
_CONTENT_POS = {"NOUN", "PROPN", "VERB", "ADJ"}


def check_content_lemmas(content_lemmas: Callable[[Any], list], nlp_ja: Any) -> Verdict:
    """02b Exercise 5: lemmas of the content words (NOUN, PROPN, VERB, ADJ) of a Japanese Doc."""
    for text in _JA_SENTENCES:
        doc = nlp_ja(text)
        attempted, got = attempt(content_lemmas, doc)
        if not attempted:
            return Verdict(False)
        want = [t.lemma_ for t in doc if t.pos_ in _CONTENT_POS]
        if not isinstance(got, (list, tuple)):
            return report(False, "", f"content_lemmas should return a list of strings, got "
                           f"{type(got).__name__}")
        if list(got) != want:
            return report(False, "", f"for {text!r} got {got}, expected {len(want)} lemmas in "
                           "sentence order (token.lemma_ where token.pos_ is a content POS)")
    return report(True, "GiNZA gives the dictionary form: 歩い -> 歩く, 早く -> 早い.", "")


# ---- notebook 02: the package on disk, sentences, speed ----------------------------------------


def _names(got: Any) -> set[str] | None:
    """A learner's collection of folder or component names as a set (trailing "/" ignored)."""
    if isinstance(got, str) or not hasattr(got, "__iter__"):
        return None
    if not all(isinstance(x, str) for x in got):
        return None
    return {x.rstrip("/") for x in got}


def check_ner_only_folders(ner_only_folders: Callable[[], Any], nlp: Any) -> Verdict:
    """02 Exercise 1: the folders a pipeline with only the ``ner`` component has on disk.

    The reference is measured: the checker saves ``nlp``'s package with every other component
    excluded to a temporary folder and lists what ``to_disk`` wrote.
    """
    import tempfile
    from pathlib import Path

    import spacy

    attempted, got = attempt(ner_only_folders)
    if not attempted:
        return Verdict(False)
    names = _names(got)
    if names is None:
        return report(False, "", "return a set of folder names, e.g. {'ner', ...}")
    others = [c for c in nlp.component_names if c != "ner"]
    with tempfile.TemporaryDirectory() as tmp:
        spacy.load(nlp.path, exclude=others).to_disk(Path(tmp) / "ner_only")
        want = {p.name for p in (Path(tmp) / "ner_only").iterdir() if p.is_dir()}
    files = sorted(names & {"config.cfg", "meta.json", "tokenizer"})
    if files:
        return report(False, "", f"{files}: files, not folders (look at the listing in §1: the "
                       "tokenizer's rules are one file); the question is which folders")
    if "tok2vec" in names:
        return report(False, "", "the ner does not listen to tok2vec (no listener in §1's config): "
                       "it carries its own tok2vec (its own weights) inside ner/model, so no "
                       "tok2vec/ folder")
    missing = sorted(want - names)
    if missing:
        return report(False, "", f"missing {missing}: every pipeline has a vocab/ folder, and "
                       "each component you keep has one")
    if names != want:
        return report(False, "", f"{sorted(names - want)} would not be written: only the "
                       "components you keep get a folder")
    return report(True, f"to_disk writes {sorted(want)}: ner carries its own tok2vec.", "")


_SENT_TEXTS = [
    "Mr. Smith went to Washington. He arrived at 5 p.m. and left. Did he return?",
    "It rained all day. We stayed in and read. The cat slept on the sofa!",
]


def check_sentence_pipeline(sentence_pipeline: Callable[[], Any], nlp: Any) -> Verdict:
    """02 Exercise 3: a pipeline without the parser that still has ``doc.sents`` (via senter).

    The reference is a separately loaded copy of the same package with the parser excluded and
    ``senter`` enabled; the learner's pipeline must split the test texts the same way.
    """
    import spacy

    attempted, got = attempt(sentence_pipeline)
    if not attempted:
        return Verdict(False)
    if not hasattr(got, "pipe_names"):
        return report(False, "", f"return the pipeline (a Language), got {type(got).__name__}")
    if "parser" in got.pipe_names:
        return report(False, "", "the parser still runs: load with exclude=['parser'] (or "
                       "disable it) so that something cheaper finds the sentences")
    reference = spacy.load(nlp.path, exclude=["parser"])
    reference.enable_pipe("senter")
    for text in _SENT_TEXTS:
        try:
            sents = [s.text for s in got(text).sents]
        except ValueError:
            return report(False, "", "doc.sents raises ValueError (E030): no component sets "
                           "sentence starts. Switch on the shipped senter: nlp.enable_pipe('senter')")
        want = [s.text for s in reference(text).sents]
        if sents != want:
            return report(False, "", f"for {text!r} got {sents}, expected {want}")
    return report(True, "senter finds the sentences without the parser (noun_chunks still need "
                  "the parse).", "")


_LEMMA_TEXTS = ["She saw the mice, and they were running from the saw.",
                "The children were eating better apples than we did.",
                "Having eaten, we left."]


def _first_lemma_change(full: list[list[str]], other: list[list[str]]) -> tuple[int, int]:
    """(text index, token index) of the first lemma that differs between two runs."""
    return next((i, j) for i, (a, b) in enumerate(zip(full, other))
                for j, (x, y) in enumerate(zip(a, b)) if x != y)


def check_lemma_components(lemma_components: Callable[[], Any], nlp: Any) -> Verdict:
    """02 Exercise 6 (derive): the fewest components that give the same lemmas as the whole
    pipeline on any text.

    Checked by running on ``_LEMMA_TEXTS``: the learner's list must reproduce the full pipeline's
    lemmas, and leaving out any one of its components must change them (else that component was
    not needed). The parser is needed: the attribute_ruler reads its ``dep_`` (a pattern makes
    an ``aux`` an ``AUX``, which has no lemmatizer tables), so "Having" in "Having eaten, we
    left." is lemmatised "having" with the parse and "have" without it.
    """
    import warnings

    attempted, got = attempt(lemma_components)
    if not attempted:
        return Verdict(False)
    if isinstance(got, str) or not isinstance(got, (list, tuple, set)) or \
            not all(isinstance(x, str) for x in got):
        return report(False, "", "return a list of component names, e.g. ['lemmatizer', ...]")
    unknown = sorted(set(got) - set(nlp.pipe_names))
    if unknown:
        return report(False, "", f"{unknown} are not in nlp.pipe_names {nlp.pipe_names}")

    def run(enable: set[str]) -> list[Any]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # W108 when no POS: the point of the exercise
            with nlp.select_pipes(enable=[c for c in nlp.pipe_names if c in enable]):
                return [nlp(text) for text in _LEMMA_TEXTS]

    def lemmas(docs: list[Any]) -> list[list[str]]:
        return [[t.lemma_ for t in doc] for doc in docs]

    full_docs, chosen = run(set(nlp.pipe_names)), set(got)
    full, mine = lemmas(full_docs), lemmas(run(chosen))
    if mine != full:
        hints = [("lemmatizer", "without the lemmatizer, most lemma_ stay empty"),
                 ("tagger", "the lemmatizer needs POS tags, and the tagger predicts them"),
                 ("attribute_ruler", "the attribute_ruler maps the tagger's tag_ to pos_; without "
                                     "pos_ the rule lemmatizer guesses (warning W108)"),
                 ("tok2vec", "the tagger listens to tok2vec (so does the parser): without it, "
                             "they read zeros")]
        for name, hint in hints:
            if name not in chosen:
                return report(False, "", f"different lemmas: {hint}")
        i, j = _first_lemma_change(full, mine)
        token = full_docs[i][j]
        if "parser" not in chosen:
            return report(False, "", f"different lemmas: in {_LEMMA_TEXTS[i]!r} the parser "
                           f"makes {token.text!r} {token.dep_!r}, an attribute_ruler pattern reads "
                           f"that dep_ and sets pos_ {token.pos_}, and the lemmatizer gives "
                           f"{token.lemma_!r}; without the parser you get {mine[i][j]!r}")
        return report(False, "", f"different lemmas from the whole pipeline: {token.text!r} in "
                       f"{_LEMMA_TEXTS[i]!r} is {mine[i][j]!r}, not {token.lemma_!r}")
    extra = [c for c in nlp.pipe_names if c in chosen and lemmas(run(chosen - {c})) == full]
    if extra:
        return report(False, "", f"the same lemmas, but {extra} can go: every component you run "
                       "costs time")
    return report(True, f"{[c for c in nlp.pipe_names if c in chosen]}: only the ner can go (it "
                  "has its own tok2vec); the parser stays, because the attribute_ruler reads its "
                  "dep_.", "")


# ---- notebook 02b: training, fine-tuning ------------------------------------------------------


@contextlib.contextmanager
def _global_rngs_kept() -> Iterator[None]:
    """Restore Python's, NumPy's and (when installed) torch's global RNGs afterwards: training
    calls ``spacy.util.fix_random_seed``, which reseeds all three, and a checker must not change
    what the learner's next seeded cell draws."""
    import importlib.util
    import random

    import numpy

    python_state, numpy_state = random.getstate(), numpy.random.get_state()
    if importlib.util.find_spec("torch") is None:
        fork: Any = contextlib.nullcontext()
    else:
        import torch

        fork = torch.random.fork_rng(devices=[])
    try:
        with fork:
            yield
    finally:
        random.setstate(python_state)
        numpy.random.set_state(numpy_state)


def check_added_examples(my_questions: Callable[[], Any], retrain: Callable[[list], Any],
                         train: list, dev: list, test_rows: list) -> Verdict:
    """02b Exercise 1: new labelled questions, written from the cross-validated mistakes on
    ``train``, and a classifier trained on ``train`` plus them. A question copied from dev or
    test is named: it would make those scores lie.

    The learner's classifier is compared, score by score on the first 25 dev questions (enough to
    tell two trainings apart), with one retrained here the same way
    (``train_textcat(train + rows, seed=0)``); then all of dev scores three: the classifier with the
    new rows, one without them, and the majority baseline.
    """

    attempted, rows = attempt(my_questions)
    if not attempted:
        return Verdict(False)
    labels = {label for _, label in train}
    if not isinstance(rows, list) or not all(isinstance(r, tuple) and len(r) == 2 and
                                             all(isinstance(x, str) for x in r) for r in rows):
        return report(False, "", "my_questions() should return a list of (text, label) tuples")
    bad = sorted({label for _, label in rows} - labels)
    if bad:
        return report(False, "", f"labels {bad} are not among {sorted(labels)}")
    short = [lab for lab in sorted(labels) if sum(r[1] == lab for r in rows) < 2]
    if short:
        return report(False, "", f"write at least two questions for each label; too few for {short}")
    train_texts = {t for t, _ in train}
    for name, held_out in [("dev", dev), ("test", test_rows)]:
        leaked = [t for t, _ in rows if t in {text for text, _ in held_out}]
        if leaked:
            return report(False, "", f"{leaked[0]!r} is a {name} question: training on {name} "
                           f"makes the {name} score lie. Write your own, from the train mistakes")
    if any(t in train_texts for t, _ in rows):
        return report(False, "", "some questions are already in train: they add nothing new")
    with _global_rngs_kept():
        return _score_added_examples(rows, retrain, train, dev)


def _score_added_examples(rows: list, retrain: Callable[[list], Any], train: list,
                          dev: list) -> Verdict:
    """The retraining half of ``check_added_examples``, once the rows passed its checks."""
    from nnlib.nlp import accuracy, majority_baseline, train_textcat

    attempted, got = attempt(retrain, rows)
    if not attempted:
        return Verdict(False)
    if not hasattr(got, "pipe_names") or "textcat" not in got.pipe_names:
        return report(False, "", "retrain should return the trained pipeline (train_textcat's result)")
    probe = [text for text, _ in dev[:25]]

    def same(a: Any, b: Any) -> bool:
        return all(abs(x.cats[k] - y.cats[k]) < 1e-6
                   for x, y in zip(a.pipe(probe), b.pipe(probe)) for k in x.cats)

    want, before = train_textcat(list(train) + rows, seed=0), train_textcat(list(train), seed=0)
    if not same(got, want):
        hint = (" (it scores like the one without your rows: train on train + extra)"
                if same(got, before) else " (use train_textcat(train + extra, seed=0))")
        return report(False, "", f"your classifier's scores differ from a retrained one{hint}")
    _, baseline = majority_baseline(train, dev)
    return report(True, f"dev accuracy {accuracy(want, dev):.3f} with your {len(rows)} questions, "
                  f"{accuracy(before, dev):.3f} without, majority baseline {baseline:.3f}.", "")


_REHEARSAL_TEXTS = ["Apple bought a startup in London for $1 billion.",
                    "Mary flew to Tokyo on Monday with three colleagues.",
                    "Google paid 40 engineers in Paris in 2023."]


def check_rehearsal_examples(rehearsal_examples: Callable[[Any, list], Any], nlp: Any) -> Verdict:
    """02b Exercise 4: training ``Example``s whose gold entities are the ones the pretrained NER
    finds now, so that fine-tuning on a new label also rehearses the old ones."""
    attempted, got = attempt(rehearsal_examples, nlp, list(_REHEARSAL_TEXTS))
    if not attempted:
        return Verdict(False)
    if not isinstance(got, list) or len(got) != len(_REHEARSAL_TEXTS) or \
            not all(hasattr(e, "reference") and hasattr(e, "predicted") for e in got):
        return report(False, "", "return one spacy.training.Example per text, in order")
    for text, example in zip(_REHEARSAL_TEXTS, got):
        want = [(e.start_char, e.end_char, e.label_) for e in nlp(text).ents]
        gold = [(e.start_char, e.end_char, e.label_) for e in example.reference.ents]
        if example.reference.text != text:
            return report(False, "", f"an example's text is {example.reference.text!r}, expected "
                           f"{text!r}")
        if not gold and want:
            return report(False, "", f"{text!r} has no gold entities: that teaches the NER that "
                           f"{want[0][2]} there is no entity, which is how it forgets. Use the "
                           "model's own ents as the gold")
        if gold != want:
            return report(False, "", f"for {text!r} the gold is {gold}, the model finds {want}")
        if example.predicted.ents:
            return report(False, "", "the predicted side must be unannotated: build the Example "
                           "from nlp.make_doc(text), not nlp(text)")
    return report(True, "Old labels go into the gold: each update now rehearses them.", "")


# ---- notebook 02b: the gradient spaCy sums, and the learning rate that matches a mean ---------


def check_textcat_gradient(textcat_gradient: Callable[[Any, Any], Any], textcat_nlp: Any,
                           train: list) -> Verdict:
    """02b Exercise 2 (derive): the gradient the ``textcat`` passes back for a batch, from its
    ``scores`` and the gold ``truths`` (both ``(m, n_labels)`` arrays). The reference is spaCy's
    own ``TextCategorizer.get_loss`` on a batch of 16 training rows."""
    import numpy as np

    from nnlib.nlp import make_examples

    textcat = textcat_nlp.get_pipe("textcat")
    examples = make_examples(textcat_nlp, train[:16], list(textcat.labels))
    scores = textcat.model.predict([eg.predicted for eg in examples])
    truths = np.array([[eg.reference.cats[label] for label in textcat.labels] for eg in examples],
                      dtype="float32")
    want = np.asarray(textcat.get_loss(examples, scores)[1])
    attempted, got = attempt(textcat_gradient, scores.copy(), truths.copy())
    if not attempted:
        return Verdict(False)
    try:
        got = np.asarray(got, dtype="float64")
    except (TypeError, ValueError):
        return report(False, "", "return an array shaped like scores (m rows, one column a label)")
    if got.shape != want.shape:
        return report(False, "", f"the gradient has one entry per score: shape {want.shape}, got "
                       f"{got.shape}")
    m, n = want.shape
    for factor, hint in [(1 / m, "you divided by the batch size m: spaCy does not. Its gradient "
                                 "is a sum over the batch, like notebook 01's nabla_w before eta/m"),
                         (2 / (m * n), "that is the gradient of the printed loss, the mean of "
                                       "(scores - truths)**2 over all m x n entries; spaCy passes "
                                       "back scores - truths: no mean, no 2"),
                         (1 / (m * n), "that is scores - truths averaged over all m x n entries; "
                                       "spaCy passes back scores - truths itself"),
                         (2.0, "spaCy drops the 2 of the squared error: scores - truths"),
                         (-1.0, "the sign is flipped: the gradient points to where the loss "
                                "grows, scores - truths")]:
        if np.allclose(got, want * factor, atol=1e-6):
            return report(False, "", hint)
    if not np.allclose(got, want, atol=1e-6):
        return report(False, "", "not spaCy's gradient: compare with the derivative of "
                       "1/2 * sum((scores - truths)**2) over the batch")
    return report(True, "scores - truths, one row per example, not divided by m: summed over the "
                  "batch when it reaches the weights.", "")


def _final_weights(optimizer: Any, gradients: list, m: int, mean: bool) -> Any:
    """Weights after one thinc optimizer step per gradient, each gradient divided by ``m`` first
    when ``mean`` (in place, as ``nnlib.nlp.MeanOverBatch`` does)."""
    import numpy as np

    weights = np.linspace(-1.0, 1.0, gradients[0].size, dtype="float32")
    for gradient in gradients:
        gradient = gradient.copy()
        if mean:
            gradient *= 1.0 / m
        weights, _ = optimizer(("w", 0), weights, gradient)
    return weights


def check_matching_learn_rates(matching_learn_rates: Callable[[float, int], Any]) -> Verdict:
    """02b Exercise 3 (predict): ``matching_learn_rates(learn_rate, m)`` -> ``(sgd_rate,
    adam_rate)``: the rates that make training on the batch *mean* take the same steps as
    training on the *sum* at ``learn_rate``. Checked by running thinc's ``SGD`` and ``Adam``
    (no clipping, no weight decay) on the same gradients both ways."""
    import numpy as np
    from thinc.api import SGD, Adam

    rng = np.random.default_rng(0)
    for learn_rate, m in [(0.1, 16), (0.001, 8)]:
        attempted, got = attempt(matching_learn_rates, learn_rate, m)
        if not attempted:
            return Verdict(False)
        if not isinstance(got, (tuple, list)) or len(got) != 2 or \
                not all(isinstance(x, (int, float)) for x in got):
            return report(False, "", "return two numbers: (sgd_rate, adam_rate)")
        sgd_rate, adam_rate = (float(x) for x in got)
        gradients = [(m * rng.normal(size=50)).astype("float32") for _ in range(5)]
        for name, make, rate, hint in [
                ("SGD", SGD, sgd_rate, f"the mean gradient is m = {m} times smaller than the sum, "
                                       "and SGD's step is rate x gradient: multiply by m"),
                ("Adam", Adam, adam_rate, "Adam divides each weight's step by the root of its "
                                          "average squared gradient, so a factor 1/m on every "
                                          "gradient cancels: keep learn_rate")]:
            summed = _final_weights(make(learn_rate, grad_clip=0.0, L2=0.0), gradients, m, False)
            averaged = _final_weights(make(rate, grad_clip=0.0, L2=0.0), gradients, m, True)
            if not np.allclose(summed, averaged, rtol=1e-3, atol=1e-6):
                return report(False, "", f"{name} with learn_rate={learn_rate}, m={m}: your rate "
                               f"{rate:g} takes other steps. {hint}")
    return report(True, "SGD needs eta * m (notebook 01's eta/m undone); Adam's per-weight "
                  "scaling makes the 1/m irrelevant (up to eps).", "")
