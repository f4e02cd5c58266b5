"""A node module importing a package that is not installed."""

import kmlc_surely_not_installed_package  # noqa: F401


def clean(instances):
    return instances
