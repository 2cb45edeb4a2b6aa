"""The HTTP API: `create_app(container)` (app.py) builds one FastAPI app of thin routers over the services."""
