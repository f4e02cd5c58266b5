"""kedro mlflow tutorial
"""

__version__ = "0.1"
