"""A small stand-in for the IMDB reviews the tutorial's ETL downloads from Hugging Face.

The project's ``etl_instances``/``etl_labels`` pipelines call ``datasets.load_dataset("imdb")``,
which needs the network; this writes what they would save instead, with the same shape:
``instances_train.pkl`` (a DataFrame with one column ``text``) and ``labels_train.pkl`` (a
DataFrame with one column ``label``, "negative" or "positive"), 400 short reviews made
from fixed word lists with a seeded generator (the same bytes of data on every run).

``python stand_in.py PROJECT`` writes them under PROJECT/data/01_raw; ``RAW_ROWS`` are the
raw rows both models are asked to predict.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pandas as pd

POSITIVE = ["great", "wonderful", "moving", "brilliant", "funny", "superb", "charming",
            "touching", "excellent", "beautiful", "gripping", "clever"]
NEGATIVE = ["boring", "awful", "dull", "terrible", "weak", "silly", "predictable",
            "tedious", "clumsy", "bland", "messy", "forgettable"]
# the tokenizer keeps `vocab_size` (2000) words and the node needs at least that many
# distinct words: made-up ones, from syllables
SYLLABLES = ["ka", "lo", "mi", "ne", "su", "ta", "ro", "vi", "de", "pa", "zu", "che", "bo",
             "fa", "gi"]
NEUTRAL = ["the", "movie", "film", "plot", "actors", "story", "scene", "ending", "was",
           "and", "director", "music", "a", "it", "this", "really", "cast", "script"] + [
    a + b + c for a in SYLLABLES for b in SYLLABLES for c in SYLLABLES][:2600]

RAW_ROWS = [
    "A wonderful, moving film: the cast was brilliant and the ending superb!",
    "Boring and predictable. The plot was awful; the actors were weak.",
    "The music was charming but the script was dull and the story messy.",
    "Really clever and funny, a gripping story with excellent actors.",
    "Tedious, clumsy, forgettable: this movie was terrible.",
    "It was a film.",
]


def reviews(n: int = 400, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = random.Random(seed)
    texts, labels = [], []
    for i in range(n):
        positive = i % 2 == 0
        own, other = (POSITIVE, NEGATIVE) if positive else (NEGATIVE, POSITIVE)
        words = (rng.choices(NEUTRAL, k=rng.randint(16, 24)) + rng.choices(own, k=3)
                 + rng.choices(other, k=rng.randint(0, 1)))
        rng.shuffle(words)
        text = " ".join(words).capitalize() + rng.choice([".", "!", "..."])
        texts.append(text)
        labels.append("positive" if positive else "negative")
    return pd.DataFrame({"text": texts}), pd.DataFrame({"label": labels})


def write(project: Path) -> None:
    raw = project / "data" / "01_raw"
    raw.mkdir(parents=True, exist_ok=True)
    instances, labels = reviews()
    instances.to_pickle(raw / "instances_train.pkl")
    labels.to_pickle(raw / "labels_train.pkl")


if __name__ == "__main__":
    write(Path(sys.argv[1]))
