"""Does the evidence mention what the question is about? A question's focal terms (the
products, tools, identifiers and other named things it names) against the passages an
answer would quote: the measurements behind the evidence-checked abstention.

    python research/evidence_terms.py collect --index /tmp/dx/sqlite \\
        --questions benchmarks/data/docs/sqlite.jsonl --out /tmp/et/sqlite.jsonl
    python research/evidence_terms.py collect --index /tmp/sf \\
        --dataset ../shared/datasets/scifact --n 300 --out /tmp/et/scifact.jsonl
    python research/evidence_terms.py collect --index /tmp/sf --lines research/data/ood \\
        --n 400 --out /tmp/et/scifact-ood.jsonl
    python research/evidence_terms.py study /tmp/et/*.jsonl

``collect`` asks each question as `answer` does (normalised; default settings) and keeps
the question as written, whether today's decision answers it, its content words
(``key_terms``: word, stem, document frequency) and the text (title, section, text) of the
top ``answer_passages`` passages. A docs question file gives each question's kind (in
scope, same field, same task, other field); a BEIR dataset's judged queries are in scope;
``--lines`` files are of the ``--kind`` given.

``study`` applies the product's evidence check (``mcp_rag/retrieve/evidence.py``) and
variants of it offline: the focal idf share, whether a term must be found as indexed only
(no paraphrase test), refusing only when the missing terms are mentioned elsewhere in
the corpus, and whether a how-to question in a product the passages never name ("How do
I ... in SQLite?", not "... on Linux": ``evidence.steps_elsewhere``) is refused whatever
its ``dense_pos`` (shipped since session 6), and whether what a how-to question asks its
steps in or with ("... in PostgreSQL": ``evidence.targets``) is focal however common,
under a share of the chunks (shipped since session 8 at 5 %; 2 % and 10 % beside it; the
rule before it, and the one before that, are columns too), and which lower-case words
there are commands ("... with mysqldump?": shipped, a word the models' vocabulary does not
hold whole and the corpus never mentions; either test alone was tried and not kept). A
question the decision answers today is *refused* by a rule when the passages hold none of
its focal terms, *partial* when they hold some. Per file and kind: questions
answered today, and how many each rule refuses or marks partial.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
from pathlib import Path
from typing import Any, Literal

from mcp_rag.app.cache import normalize_query
from mcp_rag.index.scope import Term
from mcp_rag.ingest.chunking import index_text
from mcp_rag.models.pack import resolve
from mcp_rag.models.rerank import load_reranker, vocabulary
from mcp_rag.retrieve import evidence
from mcp_rag.retrieve.pipeline import Pipeline
from mcp_rag.settings import Settings
from research.study_args import questions, run

# name -> (focal idf share, paraphrase test, refuse only when the corpus mentions it
# elsewhere, refuse only under this dense_pos (else partial; None: always refuse), also
# count as focal any word whose idf is at least this share of the maximum (None: names only),
# refuse a how-to question whatever its dense_pos, the share of chunks under which a name
# the question asks its steps in is focal: evidence.targets; None: no such rule, and which
# lower-case words it asks its steps in count as names: "vocab", those the models'
# vocabulary does not hold whole and the corpus never mentions (evidence.commands);
# "vocab-any", the first whether the corpus mentions them or not; "unknown", the second
# alone; "": none)
Rule = tuple[float, bool, bool, float | None, float | None, bool, float | None, str]
RULES: dict[str, Rule] = {
    "shipped: idf >= 0.5 max (or the product or command the steps are for in < 5 % of chunks), "
    "paraphrases, dense_pos < 0.9 or steps for another product":
        (0.5, True, False, 0.9, None, True, 0.05, "vocab"),
    **{f"the product the steps are for in < {g:.0%} of chunks": (
        0.5, True, False, 0.9, None, True, g, "vocab") for g in (0.02, 0.1)},
    "names only, no command in lower case": (0.5, True, False, 0.9, None, True, 0.05, ""),
    "a command by the vocabulary alone, mentioned or not (not kept)":
        (0.5, True, False, 0.9, None, True, 0.05, "vocab-any"),
    "a lower-case word the corpus never mentions for a command (not kept)":
        (0.5, True, False, 0.9, None, True, 0.05, "unknown"),
    "idf >= 0.5 max for every name (until session 8)":
        (0.5, True, False, 0.9, None, True, None, ""),
    "dense_pos < 0.9 only (until session 6)": (0.5, True, False, 0.9, None, False, None, ""),
    "always refused": (0.5, True, False, None, None, False, None, ""),
    "as indexed only": (0.5, False, False, None, None, False, None, ""),
    "idf >= 0.7 max": (0.7, True, False, None, None, False, None, ""),
    "only if mentioned elsewhere": (0.5, True, True, None, None, False, None, ""),
    **{f"dense_pos < {g}": (0.5, True, False, g, None, False, None, "")
       for g in (0.8, 1.0, 1.1, 1.2)},
    "dense_pos < 0.9, and any word of idf >= 0.9 max":
        (0.5, True, False, 0.9, 0.9, False, None, ""),
}
GATES = (0.8, 0.9, 1.0, 1.1, 1.2, None)  # the leave-one-corpus-out choice's candidates
MAX_LOSS = 0.015  # of a corpus's in-scope questions answered today, at most this share lost
SHORT = {"sf": "scifact", "nf": "nfcorpus", "kb": "sample"}


def collect(args: argparse.Namespace) -> None:
    # Today's decision, without the check: the study applies it (and variants) offline.
    s = Settings.load(index=str(args.index), cache_enabled=False, evidence_check=False)
    p = Pipeline.from_settings(s)
    k = s.answer_passages
    with args.out.open("w") as f:
        for q in questions(args):
            r = p.search(normalize_query(q["text"]), k=k, rerank=True, copies=False)
            f.write(json.dumps({
                "id": q["id"], "kind": q["kind"], "question": q["text"],
                "answered": not r.no_answer, "n_chunks": r.n_chunks,
                "features": r.decision.features if r.decision else None,
                "terms": [[t.word, t.stem, t.df] for t in r.terms],
                "texts": [index_text(h.chunk) for h in (r.hits or r.closest)[:k]],
            }, ensure_ascii=False) + "\n")


def verdict(rec: dict[str, Any], share: float, paraphrase: bool, elsewhere: bool,
            gate: float | None, rare: float | None = None, how_to: bool = True,
            target: float | None = evidence.TARGET_DF, lower: str = "vocab") -> str:
    """What a rule does to a question the decision answers today."""
    terms, n = [Term(*t) for t in rec["terms"]], rec["n_chunks"]
    names = evidence.written_names(rec["question"])
    if lower in ("vocab", "vocab-any") and target is not None:  # "-any": mentioned or not
        counted = terms if lower == "vocab" else [Term(t.word, t.stem, 0) for t in terms]
        names = evidence.commands(rec["question"], words(), counted) | names
    if rare is not None:
        top = math.log(1.0 + (n + 0.5) / 0.5)
        names |= {t.word.casefold(): t.word for t in terms
                  if t.idf(n) >= rare * top and t.word.casefold() not in names}
    steps_in = frozenset() if target is None else evidence.targets(rec["question"], names)
    if lower == "unknown" and target is not None:  # tried, not kept
        unknown = {t.word.casefold() for t in terms if t.df == 0}
        added = {w for w in evidence.steps_words(rec["question"])
                 if w in unknown and any(c.isalpha() for c in w)}
        names |= {w: w for w in added if w not in names}
        steps_in |= added
    e = evidence.check(terms, names, n, rec["texts"], steps_in, share, paraphrase,
                       0.0 if target is None else target)
    if e.state != "refused":
        return e.state
    if how_to and evidence.steps_elsewhere(rec["question"], e):
        return "refused"
    if (elsewhere and not e.elsewhere) or (gate is not None and rec["features"]["dense_pos"]
                                           >= gate):
        return "partial"
    return "refused"


@functools.cache
def words() -> frozenset[str]:
    """The whole words of the pack's cross-encoder's vocabulary (as the server reads them)."""
    s = Settings.load()
    return vocabulary(load_reranker(resolve(s.reranker, s.models, "reranker")))


def corpus_of(path: Path) -> str:
    """The index a file's questions were asked of: ``x-on-sf`` and ``sf-ood`` of SciFact."""
    name = path.stem.split("-on-")[-1].removesuffix("-ood")
    return SHORT.get(name, name)


def rates(recs: list[dict[str, Any]],
          gate: float | None | Literal["today"]) -> dict[str, float]:
    """In-scope answered and out-of-scope refused after a rule (``"today"``: without one)."""
    def answered(r: dict[str, Any]) -> bool:
        return r["answered"] and (
            gate == "today" or verdict(r, 0.5, True, False, gate) != "refused")
    ins = [answered(r) for r in recs if r["kind"] == "in_scope"]
    oos = [not answered(r) for r in recs if r["kind"] != "in_scope"]
    return {"in_scope_answered": sum(ins) / len(ins) if ins else math.nan,
            "refused": sum(oos) / len(oos) if oos else math.nan,
            "n_in": len(ins), "n_out": len(oos)}


def choose(by: dict[str, list[dict[str, Any]]]) -> float | None:
    """The gate that refuses most on the worst corpus while no corpus loses more than
    ``MAX_LOSS`` of its in-scope questions answered today (the largest gate of a tie)."""
    today = {c: rates(recs, "today") for c, recs in by.items()}
    best: tuple[float, float | None] | None = None
    for g in GATES:
        r = {c: rates(recs, g) for c, recs in by.items()}
        if any(r[c]["in_scope_answered"] < today[c]["in_scope_answered"] - MAX_LOSS
               for c in by if r[c]["n_in"]):
            continue
        low = min((v["refused"] for v in r.values() if v["n_out"]), default=0.0)
        if best is None or low >= best[0]:
            best = (low, g)
    return best[1] if best else GATES[0]


def loco(files: list[Path]) -> list[dict[str, Any]]:
    """For each corpus held out: the gate the others choose (``choose``), and the held-out
    corpus today and with it."""
    by: dict[str, list[dict[str, Any]]] = {}
    for path in files:
        by.setdefault(corpus_of(path), []).extend(
            json.loads(ln) for ln in path.read_text().splitlines())
    out: list[dict[str, Any]] = []
    for held in sorted(by) if len(by) > 1 else []:
        gate = choose({c: v for c, v in by.items() if c != held})
        out.append({"held_out": held, "gate": gate, "today": rates(by[held], "today"),
                    "with_gate": rates(by[held], gate)})
    return out


def study(args: argparse.Namespace) -> None:
    rows = []
    for path in args.files:
        recs = [json.loads(ln) for ln in path.read_text().splitlines()]
        for kind in ("in_scope", "same_field", "same_task", "other_field"):
            xs = [r for r in recs if r["kind"] == kind]
            if not xs:
                continue
            ans = [r for r in xs if r["answered"]]
            row = {"file": path.stem, "kind": kind, "questions": len(xs), "answered": len(ans)}
            for name, rule in RULES.items():
                v = [verdict(r, *rule) for r in ans]
                row[name] = {"refused": v.count("refused"), "partial": v.count("partial")}
            rows.append(row)
    print("| file | kind | questions | answered today | " + " | ".join(RULES) + " |")
    print("|---|---|---|---|" + "---|" * len(RULES))
    for r in rows:
        print(f"| {r['file']} | {r['kind']} | {r['questions']} | {r['answered']} | " + " | ".join(
            f"{r[n]['refused']} refused, {r[n]['partial']} partial" for n in RULES) + " |")
    held = loco(args.files)
    print("\n| held out | gate chosen by the others | in-scope answered today → with it "
          "| out-of-scope refused today → with it |\n|---|---|---|---|")
    for h in held:
        t, w = h["today"], h["with_gate"]
        print(f"| {h['held_out']} | {h['gate']} | {t['in_scope_answered']:.3f} → "
              f"{w['in_scope_answered']:.3f} ({t['n_in']}) | {t['refused']:.3f} → "
              f"{w['refused']:.3f} ({t['n_out']}) |")
    if args.out:
        args.out.write_text(json.dumps({"rules": RULES, "rows": rows, "loco": held}, indent=1))


def main() -> None:
    run(__doc__, 1000, collect, study, lines=True)


if __name__ == "__main__":
    main()
