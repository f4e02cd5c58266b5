"""The user app of the reviews example: the registered model applied to new reviews.

It never imports the training code: it reads ``models:/reviews@champion`` through an
``mlflow.model`` dataset, so whatever version carries the alias is what runs.
"""

from __future__ import annotations

from typing import Any

import pandas as pd


def score_reviews(model: Any, new_reviews: pd.DataFrame) -> pd.DataFrame:
    """The model's sentiment and probability of each new review, next to its text."""
    predictions = model.predict(new_reviews[["id", "text"]])
    return new_reviews[["id", "text"]].merge(predictions, on="id", how="left",
                                             validate="1:1")


def flag_for_follow_up(scored: pd.DataFrame, rule: dict[str, Any]
                       ) -> tuple[pd.DataFrame, int]:
    """Business rule: a confidently negative review goes to customer care.

    Negative reviews with a probability of at least ``rule["min_probability"]`` are
    flagged; the most certain (``rule["urgent_probability"]``) are urgent.
    Returns every review with its flag and priority, and the number flagged.
    """
    negative = scored["sentiment"] == "negative"
    flagged = negative & (scored["probability"] >= rule["min_probability"])
    urgent = flagged & (scored["probability"] >= rule["urgent_probability"])
    out = scored.assign(follow_up=flagged,
                        priority=urgent.map({True: "urgent", False: "normal"}).where(
                            flagged, "none"))
    return out, int(flagged.sum())
