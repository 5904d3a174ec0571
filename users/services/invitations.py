"""Console login invitations: a user created with a login, and the mail that lets them set a
password (API `create_idp_user=true`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.core.mail import EmailMessage
from django.db import transaction
from django.template.loader import render_to_string
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from users.models import User, new_user_id
from users.services.users import user_create

INVITATION_TEMPLATE = "users/email/invitation.txt"


@transaction.atomic
def user_invite(
    *, data: Mapping[str, Any], actor: User | None, link: Callable[[str, str], str]
) -> User:
    """Create a user with a console login and mail them a set-password link once committed.

    `link(uidb64, token)` is the absolute URL of the invitation page; the token is Django's
    password-reset token, so the link dies once a password is set.
    """
    # The login's identity is the user's own id, in version 1 with everything else.
    user_id = new_user_id()
    user = user_create(data={**data, "idp_user_id": user_id}, actor=actor, user_id=user_id)
    send_invitation(user=user, link=link)
    return user


def send_invitation(*, user: User, link: Callable[[str, str], str]) -> None:
    """Mail the set-password link once the transaction commits."""
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    body = render_to_string(
        INVITATION_TEMPLATE,
        {
            "name": user.first_name or user.email,
            "url": link(uid, token),
            "days": max(1, settings.PASSWORD_RESET_TIMEOUT // 86400),
        },
    )
    message = EmailMessage(subject="Your user console login", body=body, to=[user.email])
    transaction.on_commit(message.send)
