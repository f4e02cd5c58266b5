"""A node module that fails at import time."""

raise RuntimeError("this module refuses to be imported")
