"""Does listing each page's best passage first put more pages, and the answering one, in
`search`'s top k?

    python research/page_first.py collect --index /tmp/dk \\
        --questions benchmarks/data/docs/docker.jsonl --out /tmp/pf-docker.json
    python research/page_first.py study /tmp/pf-*.json

``collect`` asks each in-scope question of a docs benchmark file as ``search`` does, for
the top 10 in the order of the scores (``page_first`` off), and keeps the page of each
passage. ``study`` lists them as ``search`` shows them with ``page_first``
(``rerank.page_first``: each page's best passage before any page's second one) and
without, and prints per file how often the answering page is in the top 3 and the top 5,
and how many pages the top 5 (the default ``k``) covers on average.
"""

from __future__ import annotations

import json

from mcp_rag.app.cache import normalize_query
from mcp_rag.retrieve.pipeline import Pipeline
from mcp_rag.retrieve.rerank import page_first
from mcp_rag.settings import Settings
from research.study_args import questions, run

DEPTH = 10  # the reranked candidates (``rerank_candidates``)


def record(p: Pipeline, text: str) -> dict[str, list[str]]:
    """The pages of ``text``'s top ``DEPTH`` passages by score (``p`` has ``page_first``
    off), and as ``search`` shows them with it."""
    hits = p.search(normalize_query(text), k=DEPTH, question=text).hits
    return {"ranked": [h.chunk.doc_id for h in hits],
            "shown": [h.chunk.doc_id for h in page_first(hits)]}


def collect(args) -> None:
    if not args.questions:
        raise SystemExit("page_first.py needs --questions: a docs benchmark file (its pages)")
    p = Pipeline.from_settings(Settings.load(index=args.index, cache_enabled=False,
                                             page_first=False))
    rows = [{"id": q["id"], "pages": list(q["rel"])} | record(p, q["text"])
            for q in questions(args) if q["kind"] == "in_scope"]
    args.out.write_text(json.dumps(rows, indent=1))


def study(args) -> None:
    print("| file | questions | page in top 3, by score → page first | top 5 | "
          "pages in the top 5 |")
    print("|---|---|---|---|---|")
    for f in args.files:
        rows = json.loads(f.read_text())

        def within(key: str, n: int, rows=rows) -> int:
            return sum(any(d in r["pages"] for d in r[key][:n]) for r in rows)

        def pages(key: str, rows=rows) -> float:
            return sum(len(set(r[key][:5])) for r in rows) / max(1, len(rows))

        print(f"| {f.stem} | {len(rows)} | {within('ranked', 3)} → {within('shown', 3)} | "
              f"{within('ranked', 5)} → {within('shown', 5)} | "
              f"{pages('ranked'):.1f} → {pages('shown'):.1f} |")


if __name__ == "__main__":
    run(__doc__, 0, collect, study)
