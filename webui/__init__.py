"""The dashboard: FastAPI, Jinja2 and htmx over the bridge store and the workers."""
