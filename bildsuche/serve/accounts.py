"""The endpoint's users: `default` reads, `writer` (when given a password) writes the store.

As on a ClickHouse server, a request names its user (HTTP basic auth, the
`X-ClickHouse-User`/`-Key` headers or the `user`/`password` parameters; no
name is `default`), and a user that does not exist or a wrong password gets
AUTHENTICATION_FAILED, with the same message for both.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

READER = "default"
WRITER = "writer"


@dataclass(frozen=True)
class Account:
    name: str
    password: str  # "" for none: a request must then send no password, as on a ClickHouse server
    writes: bool


class AuthenticationError(Exception):
    code = 516
    name = "AUTHENTICATION_FAILED"

    def __init__(self, user: str) -> None:
        super().__init__(f"{user}: Authentication failed: password is incorrect, or there is no user with such name")


class Accounts:
    def __init__(self, reader_password: str | None = None, writer_password: str | None = None) -> None:
        self._accounts = {READER: Account(READER, reader_password or "", writes=False)}
        if writer_password is not None:
            if not writer_password:
                raise ValueError("the writer account needs a password")
            self._accounts[WRITER] = Account(WRITER, writer_password, writes=True)

    @property
    def names(self) -> list[str]:
        return list(self._accounts)

    def authenticate(self, user: str, password: str) -> Account:
        account = self._accounts.get(user)
        # Compared even for an unknown user, so that the answer takes the same time.
        expected = account.password if account else "\x00unknown"
        if not hmac.compare_digest(password.encode(), expected.encode()) or account is None:
            raise AuthenticationError(user)
        return account
