"""Node functions for the bad-file corpus: light, no third-party imports."""

CONSTANT = 3


def clean(instances):
    return instances


def fit(features, alpha):
    return (features, alpha)


def predict(model_file, features):
    return features


def evaluate(model_file, features):
    return 1.0


def report(model_file):
    return {"rows": 1}


def no_args():
    return 1


def two_args(a, b):
    return a, b


def keyword_only(*, data):
    return data


class Thing:
    def __init__(self, a):
        self.a = a


def predict_raw(model_file, features, raw):
    return features
