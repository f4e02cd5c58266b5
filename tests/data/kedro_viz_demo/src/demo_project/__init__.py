"""demo-project"""

__version__ = "0.1"
