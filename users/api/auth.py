"""How an API request says who it is: a console-issued token, as a bearer token or an API key."""

from __future__ import annotations

from django.http import HttpRequest
from ninja.security import APIKeyHeader, HttpBearer

from users.models import User
from users.services import tokens


class BearerToken(HttpBearer):
    """`Authorization: Bearer <token>`."""

    def authenticate(self, request: HttpRequest, token: str) -> User | None:
        return tokens.authenticate_token(token)


class ApiKey(APIKeyHeader):
    """`X-API-Key: <token>`: the same tokens, for clients that cannot set Authorization."""

    param_name = "X-API-Key"

    def authenticate(self, request: HttpRequest, key: str | None) -> User | None:
        return tokens.authenticate_token(key)
