"""Does listing each page's best passage first (and a near copy of a passage after the
other pages' best) put more pages, and the answering one, in `search`'s top k? And does
it change the ranking of documents that evaluation measures?

    python research/page_first.py collect --index /tmp/dk \\
        --questions benchmarks/data/docs/docker.jsonl --out /tmp/pf-docker.json
    python research/page_first.py collect --index /tmp/nf \\
        --dataset ../shared/datasets/nfcorpus --n 1000 --out /tmp/pf-nfcorpus.json
    python research/page_first.py study /tmp/pf-*.json

``collect`` asks each in-scope question of a docs benchmark file (or each judged query
of a BEIR dataset's split) as ``search`` does, for the top 10 in the order of the scores
(``page_first`` off), and keeps the page of each passage; for a dataset, also the first
stage's next documents, as ``mcp-rag eval`` fills its ranking. ``study`` lists them as
``search`` shows them with ``page_first`` (``rerank.page_first``) and without, and prints
per docs file how often the answering page is in the top 3 and the top 5 and how many
pages the top 5 (the default ``k``) covers on average; per dataset, nDCG@10 of the
documents in both orders (``mcp-rag eval``'s reranked stage) and how many queries' top
10 documents moved.
"""

from __future__ import annotations

import json
import statistics

from mcp_rag.app.cache import normalize_query
from mcp_rag.evaluate.metrics import docs_from_chunks, ndcg_at_k
from mcp_rag.retrieve.pipeline import Pipeline
from mcp_rag.retrieve.rerank import page_first
from mcp_rag.settings import Settings
from research.study_args import questions, run

DEPTH = 10  # the reranked candidates (``rerank_candidates``)
FILL = 100  # the first stage's depth that ``mcp-rag eval`` fills a ranking from


def record(p: Pipeline, text: str, fill: bool = False) -> dict[str, list[str]]:
    """The pages of ``text``'s top ``DEPTH`` passages by score (``p`` has ``page_first``
    off), and as ``search`` shows them with it; with ``fill``, the first stage's further
    documents (``rest``)."""
    hits = p.search(normalize_query(text), k=DEPTH, question=text).hits
    out = {"ranked": [h.chunk.doc_id for h in hits],
           "shown": [h.chunk.doc_id for h in page_first(hits)]}
    if fill:
        seen = {h.chunk.chunk_id for h in hits}
        out["rest"] = [h.chunk.doc_id for h in p.retrieve(text, FILL).hits
                       if h.chunk.chunk_id not in seen]
    return out


def collect(args) -> None:
    p = Pipeline.from_settings(Settings.load(index=args.index, cache_enabled=False,
                                             page_first=False))
    rows = [{"id": q["id"], "rel": q["rel"]} | record(p, q["text"], fill=not args.questions)
            for q in questions(args) if q["kind"] == "in_scope"]
    args.out.write_text(json.dumps(rows, indent=1))


def _ndcg(rows: list[dict], key: str) -> float:
    return statistics.mean(ndcg_at_k(docs_from_chunks(r[key] + r["rest"]), r["rel"], 10)
                           for r in rows)


def study(args) -> None:
    files = {f.stem: json.loads(f.read_text()) for f in args.files}
    docs = {k: rows for k, rows in files.items() if rows and "rest" not in rows[0]}
    datasets = {k: rows for k, rows in files.items() if rows and "rest" in rows[0]}
    if docs:
        print("| file | questions | page in top 3, by score → page first | top 5 | "
              "pages in the top 5 |")
        print("|---|---|---|---|---|")
    for name, rows in docs.items():

        def within(key: str, n: int, rows=rows) -> int:
            return sum(any(d in r["rel"] for d in r[key][:n]) for r in rows)

        def pages(key: str, rows=rows) -> float:
            return sum(len(set(r[key][:5])) for r in rows) / len(rows)

        print(f"| {name} | {len(rows)} | {within('ranked', 3)} → {within('shown', 3)} | "
              f"{within('ranked', 5)} → {within('shown', 5)} | "
              f"{pages('ranked'):.1f} → {pages('shown'):.1f} |")
    if datasets:
        print("\n| dataset | queries | nDCG@10, by score → page first | top 10 documents "
              "moved |")
        print("|---|---|---|---|")
    for name, rows in datasets.items():
        moved = sum(docs_from_chunks(r["ranked"] + r["rest"])[:10]
                    != docs_from_chunks(r["shown"] + r["rest"])[:10] for r in rows)
        print(f"| {name} | {len(rows)} | {_ndcg(rows, 'ranked'):.4f} → "
              f"{_ndcg(rows, 'shown'):.4f} | {moved} |")


if __name__ == "__main__":
    run(__doc__, 0, collect, study)
