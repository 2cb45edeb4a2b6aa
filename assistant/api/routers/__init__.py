"""One module per feature, each exposing `router`; app.py includes every module of this package."""
