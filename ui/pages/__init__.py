"""One module per page; each exposes build(ctx) and registers what it refreshes after login."""
