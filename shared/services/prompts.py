"""The pools' uploaded prompts (§7 2.3 3b "Create new prompt"; docs/pools.md): a supervisor
uploads a WAV, it is checked (format, size, length) and stored; a pool's action names it; ACS
fetches it through a short-lived signed link when it plays it to a caller."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from shared.domain.directory import Directory, ServicePool
from shared.domain.prompts import (
    PROMPT_ID,
    StoredPrompt,
    check_name,
    check_prompt,
    prompt_id_for,
)
from shared.errors import Conflict, NotAllowed, NotFound
from shared.services.prompt_links import PromptLinks
from shared.views import PoolPrompts, PromptView


class PromptStore(Protocol):
    def add(self, prompt: StoredPrompt, audio: bytes) -> StoredPrompt: ...

    def get(self, pool_id: str, prompt_id: str) -> StoredPrompt | None: ...

    def of_pool(self, pool_id: str) -> list[StoredPrompt]: ...

    def remove(self, prompt: StoredPrompt) -> None: ...

    def audio(self, pool_id: str, prompt_id: str) -> bytes | None: ...


class Uploader(Protocol):
    @property
    def oid(self) -> str: ...

    @property
    def upn(self) -> str: ...


class PromptLibrary:
    def __init__(self, *, directory: Directory, store: PromptStore, links: PromptLinks) -> None:
        self.directory, self.store, self.links = directory, store, links

    def upload(
        self,
        pool_id: str,
        name: str | None,
        media_type: str,
        audio: bytes,
        uploader: Uploader,
        now: datetime,
    ) -> PromptView:
        """Check and store a prompt; the same audio uploaded again is the same prompt."""
        pool = self._pool(pool_id)
        checked = check_prompt(audio, media_type)
        prompt = StoredPrompt(
            pool_id=pool.id,
            prompt_id=prompt_id_for(pool.id, audio),
            name=check_name(name),
            duration_ms=checked.duration_ms,
            size_bytes=checked.size_bytes,
            uploaded_at=now,
            uploaded_by=uploader.upn or uploader.oid,
        )
        return _view(self.store.add(prompt, audio), pool)

    def prompts(self, pool_id: str) -> PoolPrompts:
        pool = self._pool(pool_id)
        found = sorted(self.store.of_pool(pool.id), key=lambda p: (p.uploaded_at, p.prompt_id))
        return PoolPrompts(pool_id=pool.id, prompts=tuple(_view(p, pool) for p in found))

    def delete(self, pool_id: str, prompt_id: str) -> None:
        """409 while one of the pool's actions names it: change the settings first."""
        pool = self._pool(pool_id)
        prompt = self.store.get(pool.id, prompt_id) if PROMPT_ID.match(prompt_id) else None
        if prompt is None:
            raise NotFound(f"no prompt {prompt_id} in pool {pool_id}")
        if prompt_id in pool.prompts_in_use:
            raise Conflict(f"prompt {prompt_id} is named by the pool's settings; change them first")
        self.store.remove(prompt)

    def audio(
        self, pool_id: str, prompt_id: str, expires: str, signature: str, now: datetime
    ) -> bytes:
        """The WAV for whoever holds a valid link (ACS): 403 for a wrong or expired one."""
        if not self.links.valid(pool_id, prompt_id, expires, signature, now):
            raise NotAllowed("the prompt link is not valid or has expired")
        audio = self.store.audio(pool_id, prompt_id)
        if audio is None:
            raise NotFound(f"no prompt {prompt_id} in pool {pool_id}")
        return audio

    def _pool(self, pool_id: str) -> ServicePool:
        pool = self.directory.pool(pool_id)
        if pool is None:
            raise NotFound(f"no service pool {pool_id}")
        return pool


def _view(prompt: StoredPrompt, pool: ServicePool) -> PromptView:
    return PromptView(
        prompt_id=prompt.prompt_id,
        pool_id=prompt.pool_id,
        name=prompt.name,
        duration_ms=prompt.duration_ms,
        size_bytes=prompt.size_bytes,
        uploaded_at=prompt.uploaded_at,
        uploaded_by=prompt.uploaded_by,
        in_use=prompt.prompt_id in pool.prompts_in_use,
    )
