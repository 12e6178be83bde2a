"""How fast does the English pipeline run, depending on how you call it?

Measures words (tokens) per second, side by side in one run, on the same texts:

1. a Python loop of ``nlp(text)``          (one Doc at a time)
2. ``nlp.pipe(texts)``                     (batches: each component runs on many Docs at once)
3. ``nlp.pipe(texts, n_process=2)``        (two worker processes; pays for starting them)
4. ``nlp.pipe`` for lemmas without the parser and the NER (``select_pipes``; a few auxiliaries'
   lemmas then differ, as notebook 02's Exercise 6 shows: what the speed costs)

and prints each rate with its ratio to the loop. The texts are the 300 questions of
``data/textcat`` repeated, i.e. many short texts, where batching matters most.

    .venv/bin/python benchmarks/spacy_speed.py [--repeat 10] [--batch-size 256]

``n_process`` starts processes, so this file runs its work under ``if __name__ == "__main__"``.
"""
from __future__ import annotations

import argparse
import os

from nnlib import nlp as N

LEMMA_PIPES = ["tok2vec", "tagger", "attribute_ruler", "lemmatizer"]


def measure(repeat: int, batch_size: int) -> tuple[dict[str, float], int]:
    """Words per second for each way of calling the pipeline, and how many texts were used."""
    nlp = N.load_pipeline("en")
    train, dev = N.load_textcat_data()
    texts = [text for text, _ in train + dev] * repeat
    list(nlp.pipe(texts[:64]))  # warm-up: first calls allocate and fill caches
    rates = {
        "loop of nlp(text)": N.words_per_second(lambda ts: [nlp(t) for t in ts], texts),
        f"nlp.pipe(batch_size={batch_size})":
            N.words_per_second(lambda ts: nlp.pipe(ts, batch_size=batch_size), texts),
        f"nlp.pipe(n_process=2, batch_size={batch_size})":
            N.words_per_second(lambda ts: nlp.pipe(ts, batch_size=batch_size, n_process=2), texts),
    }
    with nlp.select_pipes(enable=LEMMA_PIPES):
        rates["nlp.pipe, lemma components only"] = N.words_per_second(
            lambda ts: nlp.pipe(ts, batch_size=batch_size), texts)
    return rates, len(texts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10, help="how often to repeat the 300 texts")
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args()
    if args.repeat < 1 or args.batch_size < 1:
        parser.error("--repeat and --batch-size must be at least 1")
    rates, n_texts = measure(args.repeat, args.batch_size)
    base = rates["loop of nlp(text)"]
    print(f"{N.pipeline_package('en')}, {n_texts} texts, {os.cpu_count()} CPU cores")
    print(f"{'how':<44} {'words/s':>10} {'vs loop':>8}")
    for how, rate in rates.items():
        print(f"{how:<44} {rate:>10,.0f} {rate / base:>7.2f}x")


if __name__ == "__main__":
    main()
