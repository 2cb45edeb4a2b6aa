"""The `gov-assistant` command line (assistant.cli.main assembles it; `python -m assistant.cli` runs it)."""
