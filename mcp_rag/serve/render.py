"""Text renderings of tool results, shared by the MCP tools and the CLI."""

from __future__ import annotations

from collections.abc import Sequence

from mcp_rag.serve.schemas import AnswerOutput, Passage, SearchOutput


def _render_passages(passages: Sequence[Passage]) -> str:
    lines = []
    for i, p in enumerate(passages, start=1):
        where = p.source + (f" § {p.section}" if p.section else "")
        where += f" p.{p.page}" if p.page else ""
        rel = f", relevance {p.relevance:.2f}" if p.relevance is not None else ""
        lines.append(f"[{i}] {p.title} — {where} (chars {p.span[0]}-{p.span[1]}{rel}; {p.uri})")
        lines.append(p.text.strip())
        lines.append("")
    return "\n".join(lines).strip()


def render_search(out: SearchOutput) -> str:
    if out.no_answer:
        return (
            f"No indexed document answers this: no passage cleared the relevance floor (best "
            f"cross-encoder score {out.best_score:.2f}). Say the documents do not contain it."
        )
    if not out.results:
        return "No matching passages in the indexed documents."
    head = f"{len(out.results)} passages for: {out.query}"
    if not out.reranked and out.rerank_reason:
        head += f" (not reranked: {out.rerank_reason})"
    return head + "\n\n" + _render_passages(out.results)


def render_answer(out: AnswerOutput) -> str:
    lines = [out.answer]
    if out.citations:
        lines += ["", "Sources:"]
        for c in out.citations:
            where = c.source + (f" § {c.section}" if c.section else "")
            where += f" p.{c.page}" if c.page else ""
            lines.append(f"[{c.n}] {where}, chars {c.span[0]}-{c.span[1]} ({c.uri})")
    elif out.sources:
        lines += ["", "Closest passages (they do not answer it):"]
        lines += [f"- {p.source} ({p.uri}, relevance {p.relevance or 0:.2f})" for p in out.sources]
    if out.fallback:
        lines += ["", f"note: {out.fallback}"]
    return "\n".join(lines)
