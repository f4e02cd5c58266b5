"""The JSON Schemas of kmlc, shipped as package data (``kmlc.schemas``)."""
