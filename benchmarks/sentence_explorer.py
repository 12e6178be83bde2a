"""Is the SentenceExplorer quick enough to feel live? Goal: under 300 ms per update.

One update is what a keystroke-and-Enter or a checkbox click costs: run the sentence's pipeline
with the ticked components, time the default pipeline once for a new sentence, build the token
table, the three word lists (spaCy, GiNZA, the tiny Llama's tokenizer) and displaCy's pictures,
and write them into the widgets. Measured on the small pipelines (en_core_web_sm, GiNZA), for
English and Japanese sentences, new sentences and checkbox toggles, each several times; prints
the median and the worst time of each kind and their ratio to the 300 ms goal (below 1 = met),
next to the bare ``nlp(text)`` on the same texts, which shows how busy the machine was.

    .venv/bin/python benchmarks/sentence_explorer.py [--repeat 5]
"""
from __future__ import annotations

import argparse
import statistics
import time

GOAL_MS = 300.0

SENTENCES = {
    "en": ["Apple is looking at buying U.K. startup for $1 billion.",
           "She was running from the saw in London on Monday.",
           "The tokenizer doesn't keep unbelievably rare words whole, does it?"],
    "ja": ["彼女は東京大学で自然言語処理を研究しています。",
           "田中さんは2024年4月に京都の大学で働き始めた。",
           "東京で新しい辞書を買いました。"],
}
TOGGLES = {"en": ["tagger", "parser", "ner"], "ja": ["parser", "ner", "morphologizer"]}


def timed(action, *args) -> float:
    """Milliseconds that ``action(*args)`` takes."""
    start = time.perf_counter()
    action(*args)
    return (time.perf_counter() - start) * 1000


def measure(repeat: int) -> dict[str, list[float]]:
    """Milliseconds per update, by kind of update."""
    from nnlib import DATA_DIR, nlp as N
    from nnlib.llama import load_tokenizer
    from nnlib.widgets import SentenceExplorer

    explorer = SentenceExplorer(N.load_pipeline("en"), N.load_pipeline("ja"),
                                load_tokenizer(DATA_DIR / "tiny-llama"))
    times: dict[str, list[float]] = {}
    for r in range(repeat):
        for lang, sentences in SENTENCES.items():
            for sentence in sentences:
                text = f"{sentence} ({r})"  # a new sentence each round: nothing cached
                # the bare pipeline on the same text, side by side: how loaded this machine is
                times.setdefault(f"{lang}: nlp(text) alone", []).append(
                    timed(explorer.pipelines[lang], text + " "))
                times.setdefault(f"{lang}: new sentence", []).append(
                    timed(explorer.set_text, text))
                for name in TOGGLES[lang]:
                    for on in (False, True):
                        times.setdefault(f"{lang}: checkbox", []).append(
                            timed(explorer.set_component, name, on))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    times = measure(args.repeat)
    print(f"{'update':<20}{'n':>4}{'median ms':>11}{'worst ms':>10}{'worst / 300 ms goal':>22}")
    for kind, values in times.items():
        worst = max(values)
        print(f"{kind:<20}{len(values):>4}{statistics.median(values):>11.1f}{worst:>10.1f}"
              f"{worst / GOAL_MS:>22.2f}")
    updates = [v for kind, v in times.items() if "alone" not in kind]
    median = max(statistics.median(v) for v in updates)
    worst = max(max(v) for v in updates)
    print(f"slowest median update {median:.1f} ms: {median / GOAL_MS:.2f}x the {GOAL_MS:.0f} ms goal; "
          f"worst single update {worst:.1f} ms: {worst / GOAL_MS:.2f}x")


if __name__ == "__main__":
    main()
