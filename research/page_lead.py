"""Does what a page says it is about (its title and lead) put the answering page first?

    python research/page_lead.py collect --index /tmp/dx/dk \\
        --questions benchmarks/data/docs/docker.jsonl --out /tmp/lead/docker.pkl
    python research/page_lead.py study /tmp/lead/*.pkl

A command reference names each page after its command and opens with what it does
("image prune: Remove unused images"), while the passages that match a question's words
may be the page's example output ("Total reclaimed space: 16.43 MB"), which the
cross-encoder rightly scores under −10. Two ways of letting the lead speak, replayed on
the docs benchmark's in-scope questions:

- **a page card**: the embedder's similarity of the question to the page's title and
  first ``N`` characters (200, 400, 800; or its title alone), min-max blended with weight
  ``w`` into ``search``'s page order (each page at its best passage's score, the top 50);
- **the card's clear favourite first**: the page whose card is the most similar moved to
  the top of `search`'s first ten pages when it leads the next page's card by ``δ`` or more;
- **the lead in what the cross-encoder reads**: each of the ten reranked candidates read
  with its page's first sentence under its heading (unless the window holds it), blended
  with the first stage as ``search`` does (``fusion.interpolate`` at the index's share,
  the relevance floor), against the same candidates read as today;
- **the opening instead of what the floor drops**: a candidate the cross-encoder scores
  under the relevance floor (example output, say) is scored again as its page's first
  passage, and keeps the better logit, at its own first-stage score.

``collect`` asks each in-scope question; ``study`` prints page hit@1 and hit@3 per file
for each variant.
"""

from __future__ import annotations

import pickle
import re
import sqlite3
from typing import Any

import numpy as np

from benchmarks.docs import page_rank
from mcp_rag.app.cache import normalize_query
from mcp_rag.ingest.chunking import index_text
from mcp_rag.retrieve.fusion import interpolate
from research.study_args import docs_index, questions, run

CARDS = (200, 400, 800, "title")
WEIGHTS = (0.1, 0.2, 0.3, 0.4, 0.5)
DELTAS = (0.02, 0.04, 0.06, 0.08, 0.1)
_LEAD = re.compile(r".{20,200}?[.!?:](?=\s|$)")


def lead(title: str, text: str) -> str:
    """A page's first sentence after its title (at most ~200 characters)."""
    words = " ".join(text.removeprefix(title).split())
    m = _LEAD.match(words)
    return m.group(0) if m else words[:150]


def collect(args) -> None:
    s, p, meta = docs_index(args, "page_lead.py")
    with sqlite3.connect(meta) as con:
        docs = list(con.execute("SELECT doc_id, title, text FROM docs"))
        opening = dict(con.execute("SELECT doc_id, min(row) FROM chunks GROUP BY doc_id"))
    ids = [d for d, _, _ in docs]
    leads = {d: lead(t, x) for d, t, x in docs}
    cards = {n: np.asarray(p.embedder.embed_documents(
        [t if n == "title" else f"{t}\n{' '.join(x[:n].split())}" for _, t, x in docs]))
        for n in CARDS}
    rows: list[dict[str, Any]] = []
    for q in questions(args):
        if q["kind"] != "in_scope":
            continue
        query = normalize_query(q["text"])
        qv = p.embedder.embed_query(query)
        shown = p.search(query, k=50)
        first = p.retrieve(query, s.rerank_candidates)
        first.names = p.names(q["text"], first.terms)
        cands = first.hits[: s.rerank_candidates]
        texts = p.passages(first, cands)
        with_lead = []
        for h, t in zip(cands, texts, strict=True):
            top, _, rest = t.partition("\n")
            ld = leads[h.chunk.doc_id]
            with_lead.append(t if ld[:40] in " ".join(t.split()) else f"{top}\n{ld}\n{rest}")
        assert p.reranker is not None
        plain = p.reranker.predict([(query, t) for t in texts]).tolist()
        swap = list(plain)
        with p.reader.in_use() as reader:
            for i, h in enumerate(cands):
                if s.relevance_floor is None or plain[i] >= s.relevance_floor:
                    continue
                first_passage = reader.chunks([opening[h.chunk.doc_id]])[0]
                if first_passage.chunk_id != h.chunk.chunk_id:
                    swap[i] = max(plain[i], float(p.reranker.predict(
                        [(query, index_text(first_passage))])[0]))
        rows.append({
            "id": q["id"], "pages": list(q["rel"]),
            "search": [(h.chunk.doc_id, h.score) for h in shown.hits],
            "card": {n: dict(zip(ids, (v @ qv).tolist(), strict=True)) for n, v in cards.items()},
            "cands": [h.chunk.doc_id for h in cands], "first": [h.score for h in cands],
            "plain": plain, "swap": swap,
            "lead": p.reranker.predict([(query, t) for t in with_lead]).tolist(),
            "share": s.rerank_weight, "floor": s.relevance_floor,
        })
    with args.out.open("wb") as f:
        pickle.dump(rows, f)


def carded(r: dict[str, Any], n: int | str, w: float) -> int | None:
    """The expected page's rank in ``search``'s page order with the card blended in."""
    best: dict[str, float] = {}
    for d, sc in r["search"]:
        best.setdefault(d, sc)
    pages = list(best)
    if not pages:
        return None
    a = np.array([best[d] for d in pages])
    c = np.array([r["card"][n][d] for d in pages])
    a = (a - a.min()) / (a.max() - a.min() + 1e-9)
    c = (c - c.min()) / (c.max() - c.min() + 1e-9)
    order = np.argsort(-((1 - w) * a + w * c), kind="stable")
    return page_rank([pages[i] for i in order], r["pages"])


def favourite(r: dict[str, Any], n: int | str, delta: float) -> int | None:
    """The expected page's rank when the card's clear favourite goes first."""
    pages = list(dict.fromkeys(d for d, _ in r["search"]))
    card = r["card"][n]
    first, second = sorted(card.values(), reverse=True)[:2]
    top = max(card, key=card.__getitem__)
    if first - second >= delta and top in pages[:10]:
        pages.remove(top)
        pages.insert(0, top)
    return page_rank(pages, r["pages"])


def reranked(r: dict[str, Any], key: str) -> int | None:
    """The expected page's rank among the reranked candidates read as ``key`` says."""
    logits = r[key]
    pages: list[str] = []
    for i, _ in interpolate(r["first"], logits, r["share"]):
        if pages and r["floor"] is not None and logits[i] < r["floor"]:
            continue
        if r["cands"][i] not in pages:
            pages.append(r["cands"][i])
    return page_rank(pages, r["pages"])


def study(args) -> None:
    def hits(ranks: list[int | None]) -> str:
        return f"{sum(k == 1 for k in ranks)} / {sum(bool(k and k <= 3) for k in ranks)}"

    variants = ["search", *(f"card {n}, w {w}" for n in CARDS for w in WEIGHTS),
                *(f"card {n}, its favourite first by {d}" for n in CARDS[:3] for d in DELTAS),
                "10 reranked, read as today", "10 reranked, read with the page's lead",
                "10 reranked, the opening for what the floor drops"]
    print("| variant (page hit@1 / hit@3) | " + " | ".join(f.stem for f in args.files) + " |")
    print("|---|" + "---|" * len(args.files))
    table = {}
    for f in args.files:
        with f.open("rb") as fh:
            rows = pickle.load(fh)
        col = [hits([carded(r, 400, 0.0) for r in rows])]
        col += [hits([carded(r, n, w) for r in rows]) for n in CARDS for w in WEIGHTS]
        col += [hits([favourite(r, n, d) for r in rows]) for n in CARDS[:3] for d in DELTAS]
        col += [hits([reranked(r, "plain") for r in rows]),
                hits([reranked(r, "lead") for r in rows]),
                hits([reranked(r, "swap") for r in rows])]
        table[f.stem] = col
    for i, v in enumerate(variants):
        print(f"| {v} | " + " | ".join(table[f.stem][i] for f in args.files) + " |")


def main() -> None:
    run(__doc__, 1000, collect, study)


if __name__ == "__main__":
    main()
