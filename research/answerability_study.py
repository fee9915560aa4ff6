"""Collect the raw signals of the answerability decision for many (corpus, question) pairs.

    python research/answerability_study.py collect --corpus scifact=INDEX \\
        --corpus nfcorpus=INDEX --corpus sample=INDEX --out /tmp/signals.jsonl

For every question of every source on every corpus it runs the default pipeline with the
decision and the floor off (the default fusion and reranking, the answer's sentence
scoring: a question the shipped decision refuses keeps its candidates) and writes one
JSON line with what any decision could use: the cross-encoder logits, first-stage scores,
the question's terms with their document frequency in this corpus, the terms the best
passages contain, the best sentence's logit. Deciding is then an offline question:

    python research/answerability_study.py calib --corpus scifact=INDEX ... --out calib.json
    python research/answerability_study.py study --signals /tmp/signals.jsonl \\
        --calib calib.json --loco          # or --shipped: the weights in the package

fits the decision's weights on the fitting pairs of every corpus (in-scope: SciFact train,
NFCorpus dev, the sample's questions; out-of-scope: the bank shipped with the package and
the other corpora's questions) and reports leave-one-corpus-out results on the held-out
pairs (SciFact/NFCorpus test, research/data/ood/*, research/data/ood_questions.txt).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path

from mcp_rag.evaluate.beir import judged_queries, load_qrels, load_queries
from mcp_rag.index.scope import bank
from mcp_rag.retrieve.pipeline import MAX_QUERY_CHARS, Pipeline
from mcp_rag.settings import Settings

REPO = Path(__file__).resolve().parents[1]
DATASETS = REPO.parent / "shared" / "datasets"
OOD_DIR = REPO / "research" / "data" / "ood"


def questions() -> dict[str, dict[str, list[str]]]:
    """source -> role -> questions. role: 'fit' or 'eval'."""
    rnd = random.Random(13)

    def beir(name: str, split: str, n: int) -> list[str]:
        texts, qrels = load_queries(DATASETS / name), load_qrels(DATASETS / name, split)
        qs = [t for _, t in judged_queries(texts, qrels)]
        return rnd.sample(qs, min(n, len(qs)))

    sample = [
        json.loads(line)["question"]
        for line in (REPO / "tests" / "golden" / "sample_questions.jsonl").read_text().splitlines()
        if line.strip()
    ]
    ood_eval = {
        f"ood:{p.stem}": [ln.strip() for ln in p.read_text().splitlines() if ln.strip()]
        for p in sorted(OOD_DIR.glob("*.txt"))
    }
    old = REPO / "research" / "data" / "ood_questions.txt"
    ood_eval["ood:general120"] = [ln.strip() for ln in old.read_text().splitlines() if ln.strip()]
    out: dict[str, dict[str, list[str]]] = {
        "scifact": {"fit": beir("scifact", "train", 150), "eval": beir("scifact", "test", 150)},
        "nfcorpus": {"fit": beir("nfcorpus", "dev", 150), "eval": beir("nfcorpus", "test", 150)},
        "sample": {"fit": sample, "eval": sample},
        "bank": {"fit": bank(), "eval": []},
    }
    for k, v in ood_eval.items():
        out[k] = {"fit": [], "eval": v}
    return out


def study_settings(index: Path) -> Settings:
    """The default pipeline with the decision and the floor off: a question the shipped
    decision would refuse keeps its candidates, so its signals are measured, not blanked."""
    return Settings(index=index, relevance_floor=None, answerability=False, cache_enabled=False)


def calibration_of(pipe: Pipeline) -> dict:
    """The calibration an index build makes for this pipeline's index and embedder."""
    from mcp_rag.index.scope import scope_calibrator
    from mcp_rag.ingest.chunking import index_text

    reader = pipe.reader
    texts = [index_text(c) for c in reader.chunks(list(range(reader.n_chunks)))]
    return scope_calibrator(texts, pipe.embedder)(reader.bm25, reader.dense)


def collect(args: argparse.Namespace) -> None:
    qs = questions()
    done: set[tuple[str, str, str]] = set()
    if args.out.exists():
        for line in args.out.read_text().splitlines():
            r = json.loads(line)
            done.add((r["corpus"], r["source"], r["question"]))
    with args.out.open("a") as fh:
        for spec in args.corpus:
            corpus, index = spec.split("=", 1)
            pipe = Pipeline.from_settings(study_settings(Path(index)))
            t0, n = time.perf_counter(), 0
            for source, roles in qs.items():
                for role, items in roles.items():
                    if {source, corpus} == {"scifact", "nfcorpus"}:
                        items = items[:40]  # neighbouring field: unsure labels, a glimpse
                    for q in items:
                        if (corpus, source, q) in done:
                            continue
                        q = q[:MAX_QUERY_CHARS]
                        rec = raw_signals(pipe, q)
                        rec.update(corpus=corpus, source=source, role=role, question=q)
                        fh.write(json.dumps(rec) + "\n")
                        fh.flush()
                        done.add((corpus, source, q))
                        n += 1
                        if n % 50 == 0:
                            el = time.perf_counter() - t0
                            print(f"{corpus}: {n} in {el:.0f} s", file=sys.stderr)


def calib(args: argparse.Namespace) -> None:
    """Each corpus's calibration, made as an index build makes it."""
    out = json.loads(args.out.read_text()) if args.out.exists() else {}
    for spec in args.corpus:
        corpus, index = spec.split("=", 1)
        out[corpus] = calibration_of(
            Pipeline.from_settings(Settings(index=Path(index), rerank=False)))
        print(corpus, out[corpus], file=sys.stderr)
    args.out.write_text(json.dumps(out, indent=1))


def raw_signals(pipe: Pipeline, question: str) -> dict:
    """Everything a decision could use: the default search with the floor off, the
    question's terms and their document frequency, and the answer's best sentence."""
    from mcp_rag.answer.extractive import score_sentences, sentences_of
    from mcp_rag.index.lexical import tokenize
    from mcp_rag.index.scope import key_terms
    from mcp_rag.ingest.chunking import index_text

    s = pipe.settings
    r = pipe.search(question, k=s.rerank_candidates, rerank=True)
    reader = pipe.reader
    terms = key_terms(question, reader.bm25)
    top = r.hits[: s.answer_passages]
    cands, _ = sentences_of(top)
    sc = score_sentences(question, cands, pipe.reranker)
    best = int(sc.argmax()) if len(sc) else -1
    stems = {t.stem for t in terms}
    return {
        "n_chunks": reader.n_chunks,
        "docs": [h.chunk.doc_id for h in top],
        "terms": [[t.word, t.stem, t.df] for t in terms],
        "logits": [h.rerank_score for h in r.hits],
        "first_rank": [h.first_stage_rank for h in r.hits],
        "bm25": [h.bm25_score for h in r.hits],
        "dense": [h.dense_score for h in r.hits],
        "nearest": r.nearest,
        "bm25_rank": [h.bm25_rank for h in r.hits],
        "dense_rank": [h.dense_rank for h in r.hits],
        "top_terms": [sorted(stems.intersection(tokenize(index_text(h.chunk)))) for h in top],
        "sent_best": float(sc[best]) if best >= 0 else None,
        "sent_len": len(cands[best].text) if best >= 0 else None,
        "ms": r.timings_ms,
    }


def study_features(raw: dict, calibration: dict) -> dict[str, float]:
    """The shipped decision's inputs (``answerability.combine``) and some it does not use."""
    from mcp_rag.index.scope import Term
    from mcp_rag.retrieve import answerability

    terms = [Term(w, s, df) for w, s, df in raw["terms"]]
    n = raw["n_chunks"]
    top = [set(t) for t in raw["top_terms"]]
    x = answerability.combine(
        terms, n, [v for v in raw["logits"] if v is not None],
        [raw["nearest"]] if raw.get("nearest") is not None
        else [v for v in raw["dense"] if v is not None],
        set().union(*top), calibration,
    )
    idf = {t.stem: t.idf(n) for t in terms}
    total = sum(idf.values()) or 1.0
    x["cover1"] = sum(idf[s] for s in top[0]) / total if top else 0.0
    x["sent"] = raw["sent_best"] if raw["sent_best"] is not None else -12.0
    x["agree"] = sum(
        1 for b, d in zip(raw["bm25_rank"], raw["dense_rank"], strict=True)
        if b is not None and d is not None and b <= 10 and d <= 10
    ) / 10
    x["n_terms"] = math.log1p(len(terms))
    return x


def load(signals: Path, calib_file: Path) -> list[dict]:
    """Records with their features and label (1 in scope, 0 out, None: unsure)."""
    cal = json.loads(calib_file.read_text())
    relevant = judged_relevant()
    recs = []
    for line in signals.read_text().splitlines():
        r = json.loads(line)
        r["x"] = study_features(r, cal[r["corpus"]])
        r["supported"] = None
        if r["corpus"] == "sample" and "KB-ERR-2847" in r["question"]:
            r["label"] = None  # the sample's own error code: answerable there
        elif r["source"] == r["corpus"]:
            r["label"] = 1
            if r["corpus"] == "sample":
                recs.append({**r, "role": "eval"})  # 12 questions: both fit and held out
        elif {r["source"], r["corpus"]} == {"scifact", "nfcorpus"}:
            r["label"] = None  # neighbouring biomedical collections: some are answerable
        else:
            r["label"] = 0
        if r["label"] == 0:
            r["supported"] = 0
        elif r["label"] == 1:
            judged = relevant.get((r["corpus"], r["question"]))
            # the sample's questions name their document; BEIR: a judged document cited
            r["supported"] = 1 if judged is None else int(bool(judged & set(r["docs"])))
        recs.append(r)
    return recs


def judged_relevant() -> dict[tuple[str, str], set[str]]:
    """(corpus, question text) -> documents judged relevant, over every split."""
    out: dict[tuple[str, str], set[str]] = {}
    for name in ("scifact", "nfcorpus"):
        texts = load_queries(DATASETS / name)
        for qrels_file in sorted((DATASETS / name / "qrels").glob("*.tsv")):
            for q, docs in load_qrels(DATASETS / name, qrels_file.stem).items():
                if q in texts:
                    out.setdefault((name, texts[q]), set()).update(
                        d for d, g in docs.items() if g > 0
                    )
    return out


def auc(pos: list[float], neg: list[float]) -> float:
    import numpy as np

    if not pos or not neg:
        return float("nan")
    p, n = np.asarray(pos)[:, None], np.asarray(neg)[None, :]
    return float((p > n).mean() + 0.5 * (p == n).mean())


def fit_logistic(x, y, w, l2: float = 1.0, iters: int = 50):
    """Weighted L2-regularised logistic regression by Newton's method."""
    import numpy as np

    x1 = np.hstack([x, np.ones((len(x), 1))])
    beta = np.zeros(x1.shape[1])
    reg = np.eye(x1.shape[1]) * l2
    reg[-1, -1] = 0
    for _ in range(iters):
        p = 1 / (1 + np.exp(-x1 @ beta))
        g = x1.T @ (w * (p - y)) + reg @ beta
        h = (x1 * (w * p * (1 - p))[:, None]).T @ x1 + reg
        beta -= np.linalg.solve(h, g)
    return beta


def study(args: argparse.Namespace) -> None:
    import numpy as np

    from mcp_rag.retrieve import answerability as A

    recs = load(args.signals, args.calib)
    names = list(recs[0]["x"])
    corpora = sorted({r["corpus"] for r in recs})
    print("AUC of each signal, held-out in-scope vs held-out out-of-scope (higher = in scope)")
    print("| signal | " + " | ".join(corpora) + " |\n|---|" + "---|" * len(corpora))
    for f in names:
        row = []
        for c in corpora:
            pos = [r["x"][f] for r in recs if r["corpus"] == c and r["label"] == 1
                   and r["role"] == "eval"]
            neg = [r["x"][f] for r in recs if r["corpus"] == c and r["label"] == 0
                   and r["role"] == "eval"]
            row.append(f"{auc(pos, neg):.3f}")
        print(f"| {f} | " + " | ".join(row) + " |")
    use = args.features.split(",")

    def train(rs: list[dict], target: str) -> np.ndarray:
        x = np.array([[r["x"][f] for f in use] for r in rs])
        y = np.array([r[target] for r in rs], float)
        # Each corpus, and each class within it, weighs the same.
        w = np.ones(len(rs))
        for c in corpora:
            for lab in (0, 1):
                m = np.array([r["corpus"] == c and r[target] == lab for r in rs])
                if m.any():
                    w[m] = 1.0 / m.sum()
        w *= len(rs) / w.sum()
        return fit_logistic(x, y, w, l2=args.l2)

    def as_weights(beta: np.ndarray) -> dict[str, float]:
        return {"bias": round(float(beta[-1]), 3)} | {
            f: round(float(b), 3) for f, b in zip(use, beta, strict=False)
        }

    fit = [r for r in recs if r["role"] == "fit"]
    w_in = as_weights(train([r for r in fit if r["label"] is not None], "label"))
    w_sup = as_weights(train([r for r in fit if r["supported"] is not None], "supported"))
    print(f"\nfitted on all corpora: IN_SCOPE = {w_in}\n                       SUPPORTED = {w_sup}")
    if args.shipped:
        print(f"evaluating the shipped weights: IN_SCOPE = {A.IN_SCOPE}, SUPPORTED = "
              f"{A.SUPPORTED}, veto unknown >= {A.VETO_UNKNOWN} and ce < {A.VETO_CE}")

    def answered(weights: dict[str, float], r: dict) -> bool:
        return A._logistic(weights, r["x"]) >= args.threshold and not (
            args.veto and A.vetoed(r["x"])
        )

    how = "shipped weights" if args.shipped else (
        "leave-one-corpus-out" if args.loco else "fitted on all")
    veto = "on" if args.veto else "off"
    print(f"\nheld-out pairs ({how}; threshold {args.threshold}; veto {veto})")
    print("| corpus | question source | n | answered | refused |\n|---|---|---|---|---|")
    summary = []
    for held in corpora:
        if args.shipped:
            weights = A.IN_SCOPE
        elif args.loco:
            weights = as_weights(train(
                [r for r in fit if r["label"] is not None and r["corpus"] != held], "label"))
        else:
            weights = w_in
        ev = [r for r in recs if r["corpus"] == held and r["role"] == "eval"
              and r["label"] is not None]
        by: dict[str, list[bool]] = {}
        for r in ev:
            by.setdefault(r["source"], []).append(answered(weights, r))
        for src, v in sorted(by.items()):
            print(f"| {held} | {src} | {len(v)} | {sum(v) / len(v):.3f} | "
                  f"{1 - sum(v) / len(v):.3f} |")
        ins = by.get(held, [])
        refused_in = len(ins) - sum(ins)
        refused_out = sum(not a for src, v in by.items() if src != held for a in v)
        n_out = sum(len(v) for src, v in by.items() if src != held)
        summary.append((held, refused_out / max(1, refused_out + refused_in),
                        refused_out / max(1, n_out), sum(ins) / max(1, len(ins))))
    print("\n| corpus | refusal precision | refusal recall | in-scope answered |\n"
          "|---|---|---|---|")
    for held, prec, rec, ans in summary:
        print(f"| {held} | {prec:.3f} | {rec:.3f} | {ans:.3f} |")
    # Reliability of confidence on the held-out pairs.
    sup_w = A.SUPPORTED if args.shipped else w_sup
    ev = [r for r in recs if r["role"] == "eval" and r["supported"] is not None]
    p = np.array([A._logistic(sup_w, r["x"]) for r in ev])
    y = np.array([r["supported"] for r in ev], float)
    print("\nconfidence on held-out pairs (supported: a judged-relevant document is cited)")
    print("| confidence | n | mean confidence | observed supported |\n|---|---|---|---|")
    edges = [0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0001]
    for lo, hi in zip(edges, edges[1:], strict=False):
        m = (p >= lo) & (p < hi)
        if m.any():
            print(f"| {lo:.1f}-{min(hi, 1):.1f} | {int(m.sum())} | {p[m].mean():.2f} | "
                  f"{y[m].mean():.2f} |")
    print(f"Brier score {np.mean((p - y) ** 2):.4f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("collect")
    c.add_argument("--corpus", action="append", required=True, help="NAME=INDEX")
    c.add_argument("--out", type=Path, required=True)
    c = sub.add_parser("calib")
    c.add_argument("--corpus", action="append", required=True, help="NAME=INDEX")
    c.add_argument("--out", type=Path, required=True)
    c = sub.add_parser("study")
    c.add_argument("--signals", type=Path, required=True)
    c.add_argument("--calib", type=Path, required=True)
    c.add_argument("--features", default="ce,dense_pos")
    c.add_argument("--threshold", type=float, default=0.5)
    c.add_argument("--l2", type=float, default=1.0)
    c.add_argument("--loco", action="store_true", help="fit without the held-out corpus")
    c.add_argument("--shipped", action="store_true", help="evaluate the shipped weights")
    c.add_argument("--veto", action=argparse.BooleanOptionalAction, default=True)
    args = ap.parse_args()
    if args.cmd == "study":
        study(args)
    elif args.cmd == "collect":
        collect(args)
    elif args.cmd == "calib":
        calib(args)


if __name__ == "__main__":
    main()
