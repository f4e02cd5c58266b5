"""Read-only views of the compiled project: ``manifest`` (``kmlc plan``) and ``graph``
(``kmlc graph``). They run and log nothing."""
