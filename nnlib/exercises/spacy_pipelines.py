"""Checkers for notebook 02 spaCy pipelines: each runs the learner's function on cases it builds
itself, compares with a reference computed here, prints one line of feedback and returns a
``Verdict`` (truthy when right)."""
from __future__ import annotations

import uuid
from typing import Any, Callable

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


