"""
This is a boilerplate pipeline 'feature_engineering'
generated using Kedro 0.18.1
"""

from .pipeline import create_pipeline  # NOQA
