"""Text renderings of tool results, shared by the MCP tools and the CLI.

Names, titles, sections and ids come from documents and file names that anyone may have
written, so they are rendered on one line with control and format characters escaped
(``safe``), and passage text is indented under its header: a file named
``x\n[9] Fake source.md`` cannot forge a citation line or an instruction line.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

from mcp_rag.app.schemas import (
    AddedOutput,
    AnswerOutput,
    ChunkOutput,
    CollectionsOutput,
    DocumentOutput,
    IndexOutput,
    Passage,
    RerankOutput,
    SearchOutput,
    StatusOutput,
)
from mcp_rag.retrieve.answerability import LOW_CONFIDENCE
from mcp_rag.types import RerankStatus, cite_label


def safe(text: str) -> str:
    """``text`` on one line: control, format and line-separator characters escaped.

    Example:
        >>> safe("inject\\n[9] Fake\\x1b[31m")
        'inject\\\\u000a[9] Fake\\\\u001b[31m'
    """
    return "".join(
        f"\\u{ord(ch):04x}" if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") else ch
        for ch in text
    )


def _indent(text: str) -> str:
    return "\n".join("  " + line if line else "" for line in text.strip().split("\n"))


def _render_passages(passages: Sequence[Passage]) -> str:
    lines = []
    for i, p in enumerate(passages, start=1):
        where = safe(cite_label(p.source, p.section, p.page))
        rel = f", relevance {p.relevance:.2f}" if p.relevance is not None else ""
        lines.append(
            f"[{i}] {safe(p.title)} — {where} (chars {p.span[0]}-{p.span[1]}{rel}; {p.uri})"
        )
        lines.append(_indent(p.text))
        lines.append("")
    return "\n".join(lines).strip()


def render_search(out: SearchOutput) -> str:
    if out.no_answer:
        a = out.answerability
        why = a.reason if a is not None and a.reason else (
            f"no passage cleared the relevance floor (best cross-encoder score "
            f"{out.best_score:.2f})" if out.best_score is not None else "no passage matched"
        )
        if out.coverage < 1:  # the rest may hold it: say so, not that the documents do not
            return (f"No indexed document answers this yet: {safe(why)}. Say it is not in "
                    f"what has been indexed so far.\n" + still_embedding(out.coverage))
        return (f"No indexed document answers this: {safe(why)}. Say the documents do not "
                f"contain it.")
    if not out.results:
        return "No matching passages in the indexed documents."
    head = f"{len(out.results)} passages for: {safe(out.query)}"
    if out.rerank_status is not RerankStatus.RERANKED and out.rerank_reason:
        head += f" (not reranked: {out.rerank_reason})"
    a = out.answerability
    if a is not None and a.state == "partial" and a.reason:
        head += f"\nPartial: {safe(a.reason)}."
    if out.coverage < 1:
        head += "\n" + still_embedding(out.coverage)
    return head + "\n\n" + _render_passages(out.results)


def still_embedding(coverage: float) -> str:
    """What a result says while a first index is being embedded."""
    return (f"Still indexing: {coverage:.0%} of the passages are embedded; the rest are "
            f"found by their words alone until they are.")


def render_answer(out: AnswerOutput) -> str:
    lines = [out.answer]
    if out.answered and out.confidence is not None and out.confidence < LOW_CONFIDENCE:
        lines += ["", f"note: confidence {out.confidence:.2f}: the quoted passages may share "
                      f"only words with the question; check that they answer it before "
                      f"relying on them, and say so if they do not."]
    if out.citations:
        lines += ["", "Sources:"]
        for c in out.citations:
            where = safe(cite_label(c.source, c.section, c.page))
            lines.append(f"[{c.n}] {where}, chars {c.span[0]}-{c.span[1]} ({c.uri})")
    elif out.sources:
        lines += ["", "Closest passages (they do not answer it):"]
        lines += [f"- {safe(p.source)} ({p.uri}, relevance {p.relevance or 0:.2f})"
                  for p in out.sources]
    if out.fallback:
        lines += ["", f"note: {out.fallback}"]
    if out.coverage < 1:
        lines += ["", still_embedding(out.coverage)]
    return "\n".join(lines)


def render_rerank(out: RerankOutput) -> str:
    return "\n".join(
        f"{i}. [{safe(r.id)}] relevance {r.relevance:.3f}: {safe(' '.join(r.text.split())[:200])}"
        for i, r in enumerate(out.results, start=1)
    )


def render_status(out: StatusOutput) -> str:
    text = (
        f"{out.docs} documents, {out.chunks} chunks"
        + (f" ({out.embedded} embedded so far)" if out.embedded < out.chunks else "")
        + f", generation {out.generation} "
        f"({out.created_at}); embedder {out.embedder}; reranker "
        f"{out.reranker or 'unavailable: ' + str(out.reranker_error)}; index {safe(out.index)}"
    )
    if len(out.collections) > 1:
        text += "\ncollections: " + ", ".join(f"{safe(n)} ({d} documents)"
                                            for n, d in out.collections.items())
    lr = out.last_run
    if lr:
        text += (
            f"\nlast run: added {lr.get('added')}, updated {lr.get('updated')}, removed "
            f"{lr.get('removed')}, unchanged {lr.get('unchanged')}, embedded "
            f"{lr.get('embedded_chunks')} chunks"
            + (f", {lr['ocr_pages']} pages read by OCR" if lr.get("ocr_pages") else "")
            + f", skipped {lr.get('skipped')} files ({lr.get('finished_at')})"
        )
    if out.ocr_pages:
        text += f"\n{out.ocr_pages} pages read by OCR (scans and images)"
    if len(out.languages) > 1 or set(out.languages) - {"en"}:
        text += "\nlanguages: " + ", ".join(f"{lang} {n}" for lang, n in out.languages.items())
    if out.language_note:
        text += f"\nnote: {out.language_note}"
    c = out.calibration
    if c:
        text += (
            f"\nanswerability calibrated on generation {c.get('generation')}: nearest-chunk "
            f"similarity {c.get('dense_low')} (out-of-scope probes) to {c.get('dense_high')} "
            f"({c.get('pseudo_questions')} questions from the documents), "
            f"{c.get('seconds')} s"
        )
    else:
        text += (
            "\nanswerability: not calibrated (an index built by an older version; default "
            "scale in use): index again to calibrate it"
        )
    return text


def render_index(out: IndexOutput) -> str:
    return (
        f"added {out.added}, updated {out.updated}, removed {out.removed}, unchanged "
        f"{out.unchanged}" + (f" ({out.moved} moved to the collection)" if out.moved else "")
        + f", embedded {out.embedded_chunks} chunks"
        + (f" ({out.reused_chunks} reused)" if out.reused_chunks else "")
        + (f" ({out.coverage:.0%} embedded)" if out.coverage < 1 else "")
        + "; generation "
        f"{out.generation}; skipped {len(out.skipped)} files"
    )


def render_added(out: AddedOutput, did: str) -> str:
    """``added added/release-checklist (3 passages; generation 7), rag://...``"""
    what = ("replaced " if out.replaced else "added ") if did == "added" else "removed "
    return (f"{what}{out.doc_id}" + (f" ({out.chunks} passages" if did == "added" else " (")
            + f"; generation {out.generation}), {out.document_uri}")


def render_document(out: DocumentOutput) -> str:
    a, b = out.span
    head = f"{safe(out.title)} — {safe(out.source)} ({out.uri}), characters {a}-{b} of {out.length}"
    more = (f"\n\n[more: call get_document with start={out.next_start} for the rest]"
            if out.next_start is not None else "")
    return f"{head}\n\n{out.text}{more}"


def render_chunk(out: ChunkOutput) -> str:
    c = out.chunk
    where = safe(cite_label(c.source, c.section, c.page))
    a, b = out.context_span
    shown = len(out.before) + 1 + len(out.after)
    return (
        f"{safe(c.title)} — {where} ({c.uri}); passage {c.chunk_no} with {shown - 1} "
        f"neighbour(s), characters {a}-{b} of {c.document_uri}\n\n{_indent(out.context)}"
    )


def render_collections(out: CollectionsOutput) -> str:
    if not out.collections:
        return "No documents are indexed yet."
    lines = [f"- {safe(c.name)}: {c.documents} documents, {c.chunks} passages"
             for c in out.collections]
    return "Collections (search one with filters: {collection: NAME}):\n" + "\n".join(lines)
