"""Content-hash caching of ``kmlc run``: skip the nodes whose inputs, code and parameters
did not change since a run whose outputs are still there (``--cache`` / ``cache: true``)."""

from kmlc.cache.index import CACHE_VERSION, INDEX_FILE, CacheIndex
from kmlc.cache.skip import RunCache, Skip, cache_state

__all__ = ["CACHE_VERSION", "INDEX_FILE", "CacheIndex", "RunCache", "Skip", "cache_state"]
