"""ETL nodes of the reviews example: a small English review corpus, built in code.

The corpus is generated from word lists with a fixed seed, so it is the same on every
machine and nothing is downloaded. Each review mixes a subject, one or two phrases of
its sentiment and, sometimes, a phrase of the opposite sentiment, so that the task is
easy but not trivial.
"""

from __future__ import annotations

import random
from typing import Any

import pandas as pd

SUBJECTS = [
    "the movie", "this film", "the plot", "the acting", "the soundtrack", "the ending",
    "the director's latest work", "the story", "the cast", "the script", "this sequel",
    "the cinematography", "the main character", "the dialogue", "the special effects",
    "the actors", "the songs",
]
PLURAL = {"the special effects", "the actors", "the songs"}
POSITIVE = [
    "{was} wonderful", "{was} a real delight", "felt fresh and clever", "{is_} brilliant",
    "made me smile from start to finish", "{was} beautifully shot", "{is_} a masterpiece",
    "kept me gripped", "{was} moving and funny", "deserves every award",
    "{was} great fun", "left me inspired", "{is_} charming", "{was} excellent", "felt genuine",
    "{is_} worth watching twice", "{was} superb", "had a terrific pace",
]
NEGATIVE = [
    "{was} boring", "{was} a total mess", "felt dull and lazy", "{is_} awful",
    "made me check my watch", "{was} badly edited", "{is_} a disaster", "lost me quickly",
    "{was} predictable and flat", "wasted a good cast", "{was} painful to sit through",
    "left me annoyed", "{is_} forgettable", "{was} terrible", "felt fake",
    "{is_} not worth the ticket", "{was} dreadful", "dragged on forever",
]
OPENERS = ["Honestly,", "I think", "In my opinion", "Frankly,", "To be fair,", "Overall,",
           "", "", ""]
CONNECTORS = ["and", "and also", "plus", "; moreover"]
CONTRASTS = ["although", "even if", "but"]


def _clause(rng: random.Random, phrases: list[str]) -> list[str]:
    subject = rng.choice(SUBJECTS)
    plural = subject in PLURAL
    phrase = rng.choice(phrases).format(was="were" if plural else "was",
                                        is_="are" if plural else "is")
    return [subject, phrase]


def _review(rng: random.Random, positive: bool, mixed_rate: float) -> str:
    own, other = (POSITIVE, NEGATIVE) if positive else (NEGATIVE, POSITIVE)
    parts = [rng.choice(OPENERS), *_clause(rng, own)]
    if rng.random() < 0.6:
        parts += [rng.choice(CONNECTORS), *_clause(rng, own)]
    if rng.random() < mixed_rate:
        parts += [rng.choice(CONTRASTS), *_clause(rng, other)]
    text = " ".join(p for p in parts if p).replace(" ;", ";")
    return text[0].upper() + text[1:] + rng.choice([".", "!", "...", "!!"])


def generate_corpus(n_reviews: int, seed: int, mixed_rate: float = 0.2) -> pd.DataFrame:
    """``n_reviews`` reviews (``id``, ``text``, ``sentiment``), half of each sentiment."""
    rng = random.Random(seed)
    rows = []
    for i in range(n_reviews):
        positive = i % 2 == 0
        rows.append({"id": i + 1, "text": _review(rng, positive, mixed_rate),
                     "sentiment": "positive" if positive else "negative"})
    corpus = pd.DataFrame(rows)
    return corpus.sample(frac=1.0, random_state=seed).reset_index(drop=True)


def make_instances(options: dict[str, Any]) -> pd.DataFrame:
    """The review texts, one row per review: ``id``, ``text``."""
    corpus = generate_corpus(options["n_reviews"], options["seed"], options["mixed_rate"])
    return corpus[["id", "text"]]


def make_labels(options: dict[str, Any]) -> pd.DataFrame:
    """The label of each review: ``id``, ``sentiment`` (positive or negative)."""
    corpus = generate_corpus(options["n_reviews"], options["seed"], options["mixed_rate"])
    return corpus[["id", "sentiment"]]
