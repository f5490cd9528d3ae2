"""Routes only route: they read the request, call the Dashboard, and render or redirect."""
