"""Checkers for notebook 02 spaCy pipelines: each runs the learner's function on cases it builds
itself, compares with a reference computed here, prints one line of feedback and returns a
``Verdict`` (truthy when right)."""
from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from .verdict import Verdict, attempt, report

# The checkers take the learner's function and the pipeline the notebook loaded, and compare with
# a reference computed here on sentences they choose. spaCy is only touched through that pipeline.

_EN_SENTENCES = [
    "Apple is looking at buying U.K. startup for $1 billion.",
    "Three engineers in Tokyo trained 12 small models last week.",
    "The cat sat on the mat while two dogs slept.",
]


def check_count_pos(count_pos: Callable[[Any], dict], nlp: Any) -> Verdict:
    """Exercise 02.1: ``count_pos(doc)`` -> {coarse POS: how many tokens have it}."""
    for text in _EN_SENTENCES:
        doc = nlp(text)
        attempted, got = attempt(count_pos, doc)
        if not attempted:
            return Verdict(False)
        want: dict[str, int] = {}
        for token in doc:
            want[token.pos_] = want.get(token.pos_, 0) + 1
        if not isinstance(got, dict):
            return report(False, "", f"count_pos should return a dict, got {type(got).__name__}")
        if dict(got) != want:
            return report(False, "", f"for {text!r} expected counts like {sorted(want)[:3]}... "
                           "(use token.pos_, the coarse tag, and count every token)")
    return report(True, "You counted the coarse (Universal) POS tags of every token.", "")


_PERCENT_SENTENCES = [
    "Sales rose 5 percent in May.",
    "About 12.5% of users left, and forty percent stayed.",
    "I have 3 cats and no percentages.",
    "Prices fell 7 pct, then rose 2 Percent.",
]
_PERCENT_REFERENCE = [{"LIKE_NUM": True}, {"LOWER": {"IN": ["percent", "%", "pct"]}}]


def check_percent_pattern(percent_pattern: Callable[[], list], nlp: Any) -> Verdict:
    """Exercise 02.2: ``percent_pattern()`` returns one Matcher pattern for "5 percent", "12.5%"."""
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


def check_drop_cardinals(drop_cardinals: Callable[[Any], Any], nlp: Any) -> Verdict:
    """Exercise 02.3: a component that removes CARDINAL entities and returns the Doc.

    The checker registers the function under a fresh name, adds it after "ner" for the run and
    removes it again, so re-running an edited solution never collides in spaCy's registry.
    """
    from spacy.language import Language

    probe = nlp(_CARDINAL_SENTENCES[0])
    attempted, out = attempt(drop_cardinals, probe)
    if not attempted:
        return Verdict(False)
    if out is not probe:
        return report(False, "", "a component must return the Doc it was given (`return doc`)")
    name = f"nnlib_exercise_drop_cardinals_{uuid.uuid4().hex}"
    Language.component(name, func=drop_cardinals)
    nlp.add_pipe(name, after="ner")
    try:
        for text in _CARDINAL_SENTENCES:
            with nlp.select_pipes(disable=[name]):
                want = [(e.text, e.label_) for e in nlp(text).ents if e.label_ != "CARDINAL"]
            got = [(e.text, e.label_) for e in nlp(text).ents]
            if got != want:
                return report(False, "", f"in {text!r} the pipeline kept {got}, expected {want}")
    finally:
        nlp.remove_pipe(name)
    return report(True, "Your function works as a pipeline component after the NER.", "")


_JA_SENTENCES = ["猫が静かに庭を歩いていた。", "東京で新しい辞書を買いました。", "明日は早く起きたい。"]
_CONTENT_POS = {"NOUN", "PROPN", "VERB", "ADJ"}


def check_content_lemmas(content_lemmas: Callable[[Any], list], nlp_ja: Any) -> Verdict:
    """Exercise 02.4: lemmas of the content words (NOUN, PROPN, VERB, ADJ) of a Japanese Doc."""
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


_QUESTIONS = [
    "How do I choose the learning rate for mini-batch SGD?",
    "Which component of the pipeline finds named entities?",
    "Why does generation on my Mac fail without CUDA?",
    "What is a tokenizer?",
]


def check_predict_label(predict_label: Callable[[Any, str], str], textcat_nlp: Any) -> Verdict:
    """Exercise 02.5: ``predict_label(nlp, text)`` -> the label with the highest score."""
    for text in _QUESTIONS:
        attempted, got = attempt(predict_label, textcat_nlp, text)
        if not attempted:
            return Verdict(False)
        cats = textcat_nlp(text).cats
        want = max(cats, key=cats.get)
        if got != want:
            return report(False, "", f"for {text!r} got {got!r}, expected {want!r} "
                           "(doc.cats maps each label to a score: take the largest)")
    return report(True, "doc.cats holds one score per label; the prediction is the argmax.", "")


# ---- notebook 02: the package on disk, sentences, speed ----------------------------------------


def _names(got: Any) -> set[str] | None:
    """A learner's collection of folder or component names as a set (trailing "/" ignored)."""
    if isinstance(got, str) or not hasattr(got, "__iter__"):
        return None
    if not all(isinstance(x, str) for x in got):
        return None
    return {x.rstrip("/") for x in got}


def check_ner_only_folders(ner_only_folders: Callable[[], Any], nlp: Any) -> Verdict:
    """Exercise 02.2: the folders a pipeline with only the ``ner`` component has on disk.

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
                       "it carries its own copy inside ner/model, so no tok2vec/ folder")
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
    """Exercise 02.3: a pipeline without the parser that still has ``doc.sents`` (via senter).

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
                "The children were eating better apples than we did."]


def check_lemma_components(lemma_components: Callable[[], Any], nlp: Any) -> Verdict:
    """Exercise 02.6: the fewest components that give the same lemmas as the whole pipeline.

    Checked by running: the learner's list must reproduce the full pipeline's lemmas, and leaving
    out any one of its components must change them (else that component was not needed).
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

    def lemmas(enable: set[str]) -> list[list[str]]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # W108 when no POS: the point of the exercise
            with nlp.select_pipes(enable=[c for c in nlp.pipe_names if c in enable]):
                return [[t.lemma_ for t in nlp(text)] for text in _LEMMA_TEXTS]

    full, chosen = lemmas(set(nlp.pipe_names)), set(got)
    if lemmas(chosen) != full:
        hints = [("lemmatizer", "without the lemmatizer, lemma_ stays empty"),
                 ("tagger", "the lemmatizer needs POS tags, and the tagger predicts them"),
                 ("attribute_ruler", "the attribute_ruler maps the tagger's tag_ to pos_; without "
                                     "pos_ the rule lemmatizer guesses (warning W108)"),
                 ("tok2vec", "the tagger listens to tok2vec: without it, it tags from zeros")]
        for name, hint in hints:
            if name not in chosen:
                return report(False, "", f"different lemmas: {hint}")
        return report(False, "", "different lemmas from the whole pipeline")
    extra = [c for c in nlp.pipe_names if c in chosen and lemmas(chosen - {c}) == full]
    if extra:
        return report(False, "", f"the same lemmas, but {extra} can go: every component you run "
                       "costs time")
    return report(True, f"{[c for c in nlp.pipe_names if c in chosen]}: the parser and ner are "
                  "not needed for lemmas.", "")


# ---- notebook 02b: training, fine-tuning ------------------------------------------------------


def check_misclassified(misclassified: Callable[[Any, list], Any], textcat_nlp: Any,
                        rows: list) -> Verdict:
    """Exercise 02b.2: ``misclassified(classifier, rows)`` -> [(text, gold, predicted)] in order."""
    attempted, got = attempt(misclassified, textcat_nlp, rows)
    if not attempted:
        return Verdict(False)
    want = []
    for text, gold in rows:
        cats = textcat_nlp(text).cats
        predicted = max(cats, key=cats.get)
        if predicted != gold:
            want.append((text, gold, predicted))
    if not isinstance(got, (list, tuple)) or not all(isinstance(x, tuple) and len(x) == 3
                                                     for x in got):
        return report(False, "", "return a list of (text, gold label, predicted label) tuples")
    got = list(got)
    if got == [(t, p, g) for t, g, p in want]:
        return report(False, "", "gold and predicted are swapped: gold is the row's label")
    if len(got) > len(want) and set(want) <= set(got):
        return report(False, "", f"{len(got) - len(want)} of yours are classified right: keep "
                       "only rows where the argmax of doc.cats differs from the gold label")
    if got != want:
        return report(False, "", f"expected {len(want)} mistakes in the order of rows, got "
                       f"{len(got)}; the first expected is {want[0] if want else None}")
    return report(True, f"{len(want)} of {len(rows)} rows are misclassified.", "")


def check_added_examples(my_questions: Callable[[], Any], retrain: Callable[[list], Any],
                         train: list, dev: list) -> Verdict:
    """Exercise 02b.3: new labelled questions, and a classifier trained on ``train`` plus them.

    The learner's classifier is compared, score by score on the dev questions, with one retrained
    here the same way (``train_textcat(train + rows, seed=0)``); then all three are re-scored on
    dev: with the new rows, without them, and the majority baseline.
    """
    from nnlib.nlp import accuracy, majority_baseline, train_textcat

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
    dev_texts, train_texts = {t for t, _ in dev}, {t for t, _ in train}
    leaked = [t for t, _ in rows if t in dev_texts]
    if leaked:
        return report(False, "", f"{leaked[0]!r} is a dev question: training on dev makes the "
                       "dev score lie. Write your own")
    if any(t in train_texts for t, _ in rows):
        return report(False, "", "some questions are already in train: they add nothing new")
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
    """Exercise 02b.4: training ``Example``s whose gold entities are the ones the pretrained NER
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
