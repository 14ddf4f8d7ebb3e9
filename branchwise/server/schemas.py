"""Request bodies of the HTTP API (pydantic models; FastAPI validates them, 422 on a bad shape).

The OpenAI request accepts (and ignores) the sampling fields clients send by habit
(``temperature``, ``top_p``, ...): answers are greedy and grounded. branchwise's own options
travel in the ``branchwise`` field (the OpenAI SDK's ``extra_body``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class AskOptions(BaseModel):
    """Per-request settings (see :mod:`branchwise.server.options` for what may be set)."""

    model_config = ConfigDict(extra="forbid")

    scorer: str | None = None
    graph_route: bool | None = None
    agent: dict[str, Any] | None = None
    navigator: dict[str, Any] | None = None
    compression: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class ContentPart(BaseModel):
    """A part of an OpenAI message's content; only ``text`` parts are read."""

    model_config = ConfigDict(extra="allow")

    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    """An OpenAI chat message."""

    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "\n".join(p.text or "" for p in self.content if p.type == "text")
        return self.content or ""


class BranchwiseExtra(AskOptions):
    """The ``branchwise`` field of a chat request: options, plus whether to append the sources."""

    sources_in_text: bool = True


class ChatCompletionRequest(BaseModel):
    """``POST /v1/chat/completions``: ``model`` is the index name."""

    model_config = ConfigDict(extra="allow")

    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    branchwise: BranchwiseExtra | None = None


class Turn(BaseModel):
    """One earlier turn of a conversation."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["user", "assistant"]
    content: str


class AskRequest(BaseModel):
    """``POST /v1/indexes/{name}/ask``."""

    model_config = ConfigDict(extra="forbid")

    question: str = Field(min_length=1)
    history: list[Turn] = Field(default_factory=list)
    options: AskOptions | None = None


class DocumentIn(BaseModel):
    """A document sent as JSON (its ``id`` becomes the document id)."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=200)
    text: str = Field(min_length=1)
    title: str = ""


class AddDocumentsRequest(BaseModel):
    """``POST /v1/indexes/{name}/documents`` (JSON)."""

    model_config = ConfigDict(extra="forbid")

    documents: list[DocumentIn] = Field(min_length=1, max_length=1000)
