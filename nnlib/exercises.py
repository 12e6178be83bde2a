"""Checkers for the notebooks' exercises: say right or wrong, kindly, without giving the answer.

Each checker takes the learner's function (or value), runs it on cases it builds itself and
compares with a reference computed here. It prints one line of feedback and returns a ``Verdict`` (truthy when right).
A stub that still raises ``NotImplementedError`` is reported as "not attempted yet", so an
unsolved exercise never breaks a notebook run.
"""
from __future__ import annotations

from typing import Any, Callable


class Verdict:
    """What a checker returns: truthy when right. It prints nothing when it is a cell's last
    value, because the checker has already printed its feedback."""

    def __init__(self, ok: bool) -> None:
        self.ok = bool(ok)

    def __bool__(self) -> Verdict:
        return self.ok

    def __repr__(self) -> str:
        return f"Verdict({self.ok})"

    def _ipython_display_(self) -> None:
        pass


def _attempt(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[bool, Any]:
    """Call the learner's function; (False, None) if it is still the stub."""
    try:
        return True, fn(*args, **kwargs)
    except NotImplementedError:
        print("Not attempted yet: replace `raise NotImplementedError` with your code and re-run.")
        return False, None


def _report(ok: bool, right: str, wrong: str) -> Verdict:
    print(("Right! " + right) if ok else ("Not yet: " + wrong))
    return Verdict(ok)


# ---- 01 SGD from scratch -------------------------------------------------------------------


def check_sgd_update(fn: Callable[..., Any]) -> Verdict:
    """Exercise 01.1: ``fn(w, nabla_w, eta, m)`` returns the weights after one mini-batch step."""
    import numpy as np

    rng = np.random.default_rng(11)
    w, nw = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    ran, got = _attempt(fn, w.copy(), nw.copy(), 0.5, 8)
    if not ran:
        return Verdict(False)
    want = w - (0.5 / 8) * nw
    if np.shape(got) != want.shape:
        return _report(False, "", f"expected an array of shape {want.shape}, got {np.shape(got)}.")
    if np.allclose(got, w - 0.5 * nw):
        return _report(False, "", "nabla_w is a *sum* over the mini-batch: divide by m.")
    if np.allclose(got, w + (0.5 / 8) * nw):
        return _report(False, "", "step *against* the gradient: subtract it.")
    return _report(np.allclose(got, want), "w - (eta/m) * nabla_w: a step of size eta down the "
                   "mean gradient.", "compare with the update line at the top of the notebook.")


def check_parameter_count(fn: Callable[..., Any]) -> Verdict:
    """Exercise 01.2: ``fn(sizes)`` returns how many weights and biases ``Network(sizes)`` has."""
    cases = [[784, 30, 10], [64, 30, 10], [2, 3, 1], [5, 5, 5, 5]]
    for sizes in cases:
        ran, got = _attempt(fn, sizes)
        if not ran:
            return Verdict(False)
        want = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
        if got != want:
            hint = ("the input layer has no biases" if got == want + sizes[0] else
                    "each layer l+1 has sizes[l+1] x sizes[l] weights and sizes[l+1] biases")
            return _report(False, "", f"for {sizes} you said {got}; {hint}.")
    return _report(True, "[784, 30, 10] has 23,860 numbers for SGD to tune.", "")


def check_cross_entropy_delta(fn: Callable[..., Any]) -> Verdict:
    """Exercise 01.3: ``fn(a, y, z)`` is the output error delta^L for the cross-entropy cost."""
    import numpy as np

    from nnlib.sgd import sigmoid, sigmoid_prime

    rng = np.random.default_rng(5)
    z = rng.standard_normal((10, 1)) * 2
    a = sigmoid(z)
    y = np.zeros((10, 1))
    y[3] = 1.0
    ran, got = _attempt(fn, a, y, z)
    if not ran:
        return Verdict(False)
    if np.allclose(got, (a - y) * sigmoid_prime(z)):
        return _report(False, "", "that is the quadratic cost's delta. For cross-entropy, "
                       "dC/da = (a - y) / (a (1 - a)); multiply by sigma'(z) and simplify.")
    return _report(np.allclose(got, a - y), "delta = a - y: the sigma'(z) cancels, so a saturated "
                   "neuron that is wrong still learns fast.", "work out dC/da * sigma'(z) for "
                   "C = -[y ln a + (1 - y) ln(1 - a)].")


# ---- 02 spaCy pipelines --------------------------------------------------------------------
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
        attempted, got = _attempt(count_pos, doc)
        if not attempted:
            return False
        want: dict[str, int] = {}
        for token in doc:
            want[token.pos_] = want.get(token.pos_, 0) + 1
        if dict(got or {}) != want:
            return _report(False, "", f"for {text!r} expected counts like {sorted(want)[:3]}... "
                           "(use token.pos_, the coarse tag, and count every token)")
    return _report(True, "You counted the coarse (Universal) POS tags of every token.", "")


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

    attempted, pattern = _attempt(percent_pattern)
    if not attempted:
        return False

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
        return _report(False, "", f"the Matcher did not accept the pattern ({type(exc).__name__}): "
                       "it must be a list of dicts, one per token")
    want = found(_PERCENT_REFERENCE)
    for text, g, w in zip(_PERCENT_SENTENCES, got, want):
        if g != w:
            return _report(False, "", f"in {text!r} your pattern found {g}, expected {w}")
    return _report(True, "One pattern, two tokens: a number-like token, then the unit.", "")


_CARDINAL_SENTENCES = _EN_SENTENCES + ["Google hired 40 people in Paris in 2023."]
_component_ids = iter(range(1_000_000))


def check_drop_cardinals(drop_cardinals: Callable[[Any], Any], nlp: Any) -> Verdict:
    """Exercise 02.3: a component that removes CARDINAL entities and returns the Doc.

    The checker registers the function under a fresh name, adds it after "ner" for the run and
    removes it again, so re-running an edited solution never collides in spaCy's registry.
    """
    from spacy.language import Language

    probe = nlp(_CARDINAL_SENTENCES[0])
    attempted, out = _attempt(drop_cardinals, probe)
    if not attempted:
        return False
    if out is not probe:
        return _report(False, "", "a component must return the Doc it was given (`return doc`)")
    name = f"nnlib_exercise_drop_cardinals_{next(_component_ids)}"
    Language.component(name, func=drop_cardinals)
    nlp.add_pipe(name, after="ner")
    try:
        for text in _CARDINAL_SENTENCES:
            with nlp.select_pipes(disable=[name]):
                want = [(e.text, e.label_) for e in nlp(text).ents if e.label_ != "CARDINAL"]
            got = [(e.text, e.label_) for e in nlp(text).ents]
            if got != want:
                return _report(False, "", f"in {text!r} the pipeline kept {got}, expected {want}")
    finally:
        nlp.remove_pipe(name)
    return _report(True, "Your function works as a pipeline component after the NER.", "")


_JA_SENTENCES = ["猫が静かに庭を歩いていた。", "東京で新しい辞書を買いました。", "明日は早く起きたい。"]
_CONTENT_POS = {"NOUN", "PROPN", "VERB", "ADJ"}


def check_content_lemmas(content_lemmas: Callable[[Any], list], nlp_ja: Any) -> Verdict:
    """Exercise 02.4: lemmas of the content words (NOUN, PROPN, VERB, ADJ) of a Japanese Doc."""
    for text in _JA_SENTENCES:
        doc = nlp_ja(text)
        attempted, got = _attempt(content_lemmas, doc)
        if not attempted:
            return False
        want = [t.lemma_ for t in doc if t.pos_ in _CONTENT_POS]
        if list(got or []) != want:
            return _report(False, "", f"for {text!r} got {got}, expected {len(want)} lemmas in "
                           "sentence order (token.lemma_ where token.pos_ is a content POS)")
    return _report(True, "GiNZA gives the dictionary form: 歩いて -> 歩く, 買い -> 買う.", "")


_QUESTIONS = [
    "How do I choose the learning rate for mini-batch SGD?",
    "Which component of the pipeline finds named entities?",
    "Why does generation on my Mac fail without CUDA?",
    "What is a tokenizer?",
]


def check_predict_label(predict_label: Callable[[Any, str], str], textcat_nlp: Any) -> Verdict:
    """Exercise 02.5: ``predict_label(nlp, text)`` -> the label with the highest score."""
    for text in _QUESTIONS:
        attempted, got = _attempt(predict_label, textcat_nlp, text)
        if not attempted:
            return False
        cats = textcat_nlp(text).cats
        want = max(cats, key=cats.get)
        if got != want:
            return _report(False, "", f"for {text!r} got {got!r}, expected {want!r} "
                           "(doc.cats maps each label to a score: take the largest)")
    return _report(True, "doc.cats holds one score per label; the prediction is the argmax.", "")



# ---- 03 Loading Llama ----------------------------------------------------------------------


# ---- 04 Step-through generation ------------------------------------------------------------
