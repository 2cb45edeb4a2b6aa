import sys

from assistant.cli.main import app

sys.exit(app())
