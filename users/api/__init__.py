"""The JSON API (django-ninja), mounted at /api/ by `console.urls`.

`auth` (tokens), `errors` (the error shapes and the adapter from service errors), `schemas`
(bodies) and `endpoints` (parse → policy → service or selector → out).
"""

from users.api.endpoints import api

__all__ = ["api"]
