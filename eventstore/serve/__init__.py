"""``eventstore serve``: an HTTP API, live Server-Sent Events and a run viewer.

Needs the ``serve`` extra (``pip install 'eventstore-core[serve]'``), which brings
Starlette and uvicorn; ``import eventstore`` alone never imports them.

- :func:`create_app` builds the ASGI app for a store or a store URL:
  ``GET /runs``, ``GET /runs/{id}/events``, ``GET /runs/{id}/stream`` and the
  viewer page at ``/``.
- :func:`serve_command` runs it under uvicorn (what the CLI calls).
"""

from __future__ import annotations

__all__ = ["create_app", "serve_command"]

from ._app import create_app
from ._command import serve_command
