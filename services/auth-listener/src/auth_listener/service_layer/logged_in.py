"""This process's memory of accounts known to have logged in, by id: a login naming one of them
is answered without any database work.

Why it is safe: an account that has had its first login is never pending again. The users
service makes an account active only with a first login, and reactivating puts it back to
active if it ever logged in (pending only if it never did); the copy here keeps a login it has
seen (KnownAccount.replace_with). So a cached id never hides a first login. Ids only: an email
or a username can move to another account, and another replica would not see the change.

What it may get wrong, and why that is acceptable: an account deactivated after it was
remembered is still answered `already_active` instead of `deactivated` by a replica that did
not apply the deactivation itself (the replica that applies it forgets the id, see
services.apply_account), until the id ages out. That outcome is only a metric label: nothing is
written on that path either way, and a deactivated account's login changes nothing anywhere.

Bounded: two generations of at most size/2 ids each. A hit in the older generation is copied
into the newer one, so ids in use stay; when the newer one is full, the older one is dropped.
It holds at least the size/2 most recently used ids and never more than size; an id costs
about 90 bytes (its 128-bit int and a set slot), so the default 100,000 is under 10 MB."""

from __future__ import annotations

import uuid


class LoggedInAccounts:
    def __init__(self, size: int) -> None:
        self.size = max(0, size)
        self._generation = max(1, self.size // 2)
        self._newer: set[int] = set()
        self._older: set[int] = set()

    def __contains__(self, user_id: uuid.UUID) -> bool:
        key = user_id.int
        if key in self._newer:
            return True
        if key in self._older:
            self._keep(key)
            return True
        return False

    def __len__(self) -> int:
        return len(self._newer | self._older)

    def remember(self, user_id: uuid.UUID) -> None:
        if self.size:
            self._keep(user_id.int)

    def forget(self, user_id: uuid.UUID) -> None:
        self._newer.discard(user_id.int)
        self._older.discard(user_id.int)

    def _keep(self, key: int) -> None:
        self._newer.add(key)
        if len(self._newer) >= self._generation:
            self._older, self._newer = self._newer, set()
