"""Training and inference nodes of the reviews example: plain Python, no kmlc or MLflow.

``clean_text`` and ``predict`` are tagged ``inference``: they, with the fitted
vectorizer, label encoder and classifier, make the model every training run logs.
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelEncoder

_NOT_LETTERS = re.compile(r"[^a-z\s]+")
_SPACES = re.compile(r"\s+")


def clean_text(instances: pd.DataFrame) -> pd.DataFrame:
    """Lower-case the reviews, expand "n't", drop punctuation and digits, squeeze spaces."""
    text = (instances["text"].astype(str).str.lower()
            .str.replace("n't", " not", regex=False)
            .str.replace("'s", "", regex=False)
            .str.replace(_NOT_LETTERS, " ", regex=True)
            .str.replace(_SPACES, " ", regex=True)
            .str.strip())
    return pd.DataFrame({"id": instances["id"].to_numpy(), "text": text.to_numpy()})


def split(clean_instances: pd.DataFrame, labels: pd.DataFrame, options: dict[str, Any]
          ) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series, pd.Series]:
    """Join texts and labels on ``id``; a stratified train/test split."""
    target = clean_instances[["id"]].merge(labels, on="id", how="left", validate="1:1")
    if target["sentiment"].isna().any():
        raise ValueError("some instances have no label")
    x_train, x_test, y_train, y_test = train_test_split(
        clean_instances, target["sentiment"], test_size=options["test_size"],
        random_state=options["seed"], stratify=target["sentiment"])
    return x_train, x_test, y_train, y_test


def fit_vectorizer(x_train: pd.DataFrame, stop_words: list[str],
                   options: dict[str, Any]) -> TfidfVectorizer:
    """A TF-IDF vectorizer fitted on the training texts, without the shipped stop words."""
    vectorizer = TfidfVectorizer(stop_words=sorted(set(stop_words)),
                                 ngram_range=(1, options["ngram_max"]),
                                 min_df=options["min_df"], sublinear_tf=True)
    return vectorizer.fit(x_train["text"])


def fit_label_encoder(labels: pd.DataFrame) -> LabelEncoder:
    """Sentiment names <-> integer classes."""
    return LabelEncoder().fit(labels["sentiment"])


def train_classifier(vectorizer: TfidfVectorizer, label_encoder: LabelEncoder,
                     x_train: pd.DataFrame, y_train: pd.Series,
                     options: dict[str, Any]) -> LogisticRegression:
    """A logistic regression on the TF-IDF features."""
    model = LogisticRegression(C=options["c"], max_iter=options["max_iter"])
    return model.fit(vectorizer.transform(x_train["text"]), label_encoder.transform(y_train))


def predict(vectorizer: TfidfVectorizer, label_encoder: LabelEncoder,
            classifier: LogisticRegression, clean_instances: pd.DataFrame) -> pd.DataFrame:
    """The inference output: ``id``, ``sentiment`` (decoded) and its ``probability``."""
    probabilities = classifier.predict_proba(vectorizer.transform(clean_instances["text"]))
    best = probabilities.argmax(axis=1)
    return pd.DataFrame({
        "id": clean_instances["id"].to_numpy(),
        "sentiment": label_encoder.inverse_transform(classifier.classes_[best]),
        "probability": probabilities.max(axis=1).round(6),
    })


def evaluate(vectorizer: TfidfVectorizer, label_encoder: LabelEncoder,
             classifier: LogisticRegression, x_test: pd.DataFrame,
             y_test: pd.Series) -> dict[str, float]:
    """Test-set metrics; "positive" is the positive class."""
    predicted = predict(vectorizer, label_encoder, classifier, x_test)["sentiment"]
    positive = int(label_encoder.transform(["positive"])[0])
    scores = classifier.predict_proba(vectorizer.transform(x_test["text"]))[:, positive]
    truth = y_test.to_numpy()
    return {
        "accuracy": float(accuracy_score(truth, predicted)),
        "f1": float(f1_score(truth, predicted, pos_label="positive")),
        "precision": float(precision_score(truth, predicted, pos_label="positive")),
        "recall": float(recall_score(truth, predicted, pos_label="positive")),
        "roc_auc": float(roc_auc_score(truth == "positive", scores)),
        "test_rows": float(len(truth)),
    }
