"""Guest credentials, from the environment only.

The desired file may name the variables a node's credentials are in
(`credentialsEnv: {user: VAR, password: VAR}`), never the values; by default they are in
`MSCSCTL_GUEST_USER` and `MSCSCTL_GUEST_PASSWORD`. Credentials never reach the state, a
plan or a message: errors name the variables, and `repr()` shows no value.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from providers.guest.transport import GuestUnavailable, UnavailableReason
from reconciler.spec import CredentialsEnv, PhysicalNode, VmNode

DEFAULT_USER_ENV = "MSCSCTL_GUEST_USER"
DEFAULT_PASSWORD_ENV = "MSCSCTL_GUEST_PASSWORD"


@dataclass(frozen=True)
class GuestCredentials:
    """A guest user name and password, and the names of the variables they came from."""

    user: str = field(repr=False)
    password: str = field(repr=False)
    user_env: str = DEFAULT_USER_ENV
    password_env: str = DEFAULT_PASSWORD_ENV

    @property
    def source(self) -> str:
        """Where a user should look when the guest refuses them: `VAR_USER / VAR_PASSWORD`."""
        return f"{self.user_env} / {self.password_env}"


def credentials_env_of(node: VmNode | PhysicalNode) -> CredentialsEnv:
    return node.credentials_env or CredentialsEnv(user=DEFAULT_USER_ENV, password=DEFAULT_PASSWORD_ENV)


def credentials_for(node: VmNode | PhysicalNode, env: Mapping[str, str] | None = None) -> GuestCredentials:
    """The node's credentials, or `GuestUnavailable(no-credentials)` naming the unset variables.

    A node that names its own variables uses those and nothing else: falling back to the
    defaults would log in to one node as another node's administrator without saying so.
    """
    env = os.environ if env is None else env
    names = credentials_env_of(node)
    user = env.get(names.user, "")
    password = env.get(names.password, "")
    missing = [name for name, value in ((names.user, user), (names.password, password)) if not value]
    if missing:
        raise GuestUnavailable(
            UnavailableReason.NO_CREDENTIALS,
            "guest credentials not set: set " + " and ".join(missing) + " in the environment",
        )
    return GuestCredentials(user=user, password=password, user_env=names.user, password_env=names.password)
