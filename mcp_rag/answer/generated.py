"""Generated answers: an OpenAI-compatible chat endpoint writes the answer from the passages.

Every [n] it returns must name a passage it was given; otherwise the caller drops the
answer for the extractive one (``check_citations``).
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence

from mcp_rag.types import Hit, cite_label

NOT_FOUND = "NOT IN DOCUMENTS"
SYSTEM_PROMPT = f"""You answer questions from the numbered passages you are given, and from \
nothing else.
- After every sentence, cite the passages it comes from by number in square brackets, e.g. \
[1] or [1][3].
- Do not add facts that are not in the passages.
- Keep the conditions, exceptions and negations that the passages state.
- If the passages do not contain the answer, reply with exactly: {NOT_FOUND}"""

_MARKER = re.compile(r"\[(\s*\d+(?:\s*[,;]\s*\d+)*\s*)\]")


def passages_prompt(question: str, hits: Sequence[Hit]) -> str:
    """The user message: numbered passages with their source, then the question."""
    parts = []
    for i, h in enumerate(hits, start=1):
        c = h.chunk
        where = cite_label(c.source, c.section)
        parts.append(f"[{i}] {c.title} ({where})\n{c.text.strip()}")
    return "Passages:\n\n" + "\n\n".join(parts) + f"\n\nQuestion: {question}"


def check_citations(text: str, n_passages: int) -> tuple[list[int], list[int]]:
    """Citation numbers in ``text``: (those naming one of the passages, those that do not)."""
    cited = sorted({int(x) for m in _MARKER.finditer(text) for x in re.split(r"[,;]", m.group(1))})
    good = [n for n in cited if 1 <= n <= n_passages]
    return good, [n for n in cited if n not in good]


def says_not_found(text: str) -> bool:
    return NOT_FOUND.casefold() in text.casefold() and not _MARKER.search(text)


class LLMError(Exception):
    """The chat endpoint failed or returned something unusable."""


class ChatClient:
    """A minimal client of an OpenAI-compatible ``/chat/completions`` endpoint.

    Args:
        url: the API base (``http://localhost:11434/v1``) or the full completions URL.
        model: the model name the endpoint serves.
        api_key: sent as a bearer token when given.
        timeout: seconds for the whole request.
        max_tokens: length limit of the answer.
    """

    def __init__(
        self,
        url: str,
        model: str,
        api_key: str | None = None,
        timeout: float = 60.0,
        max_tokens: int = 512,
    ) -> None:
        url = url.rstrip("/")
        self.url = url if url.endswith("/chat/completions") else url + "/chat/completions"
        self.model = model
        self.timeout = timeout
        self.max_tokens = max_tokens
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}

    @property
    def name(self) -> str:
        return f"{self.model} at {self.url}"

    def complete(self, system: str, user: str) -> str:
        """The endpoint's answer to one system + user message (temperature 0)."""
        body = json.dumps({
            "model": self.model,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
            "temperature": 0,
            "max_tokens": self.max_tokens,
        }).encode()
        req = urllib.request.Request(
            self.url, data=body, method="POST",
            headers={"Content-Type": "application/json", **self._headers},
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:
                raw = r.read()
        except urllib.error.HTTPError as e:
            detail = e.read()[:200].decode("utf-8", "replace")
            raise LLMError(f"{self.url} answered HTTP {e.code}: {detail}") from e
        except (OSError, ValueError) as e:  # refused, timed out, bad URL
            raise LLMError(f"{self.url} did not answer: {type(e).__name__}: {e}") from e
        try:
            content = json.loads(raw)["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as e:
            raise LLMError(f"{self.url} returned no chat completion: {raw[:200]!r}") from e
        if not isinstance(content, str) or not content.strip():
            raise LLMError(f"{self.url} returned an empty answer")
        return content.strip()


def generated(
    question: str, hits: Sequence[Hit], complete: Callable[[str, str], str]
) -> tuple[str, list[int]]:
    """A generated answer and the passage numbers it cites.

    Raises:
        LLMError: the endpoint failed, or the answer cites no passage or a passage it was
            not given (an answer whose citations do not resolve is not returned).
    """
    text = complete(SYSTEM_PROMPT, passages_prompt(question, hits))
    if says_not_found(text):
        return text, []
    good, bad = check_citations(text, len(hits))
    if bad:
        marks = ", ".join(f"[{n}]" for n in bad)
        raise LLMError(
            f"the generated answer cited {marks}, which is not one of the {len(hits)} "
            f"passages it was given"
        )
    if not good:
        raise LLMError("the generated answer cited no passage")
    return text, good
