"""The REST API: indexes, their documents, questions with options, traces.

=======  ==========================================  ===============================================
GET      ``/v1/indexes``                             the indexes this key may use, with their sizes
GET      ``/v1/indexes/{name}``                      one index: documents, chunks, tree, graph
GET      ``/v1/indexes/{name}/documents``            document ids and chunk counts
POST     ``/v1/indexes/{name}/documents``            add / replace documents: JSON ``{"documents":
                                                     [{"id", "text", "title"}]}`` or multipart ``files``
DELETE   ``/v1/indexes/{name}/documents/{doc_id}``   delete a document
POST     ``/v1/indexes/{name}/ask``                  ``{"question", "history", "options"}``
GET      ``/v1/traces/{trace_id}``                   the agent trace of an answer
=======  ==========================================  ===============================================

Updates go through the incremental path of the composition root
(``assembly.root.add_documents`` / ``delete_documents``) and wait in the same fair queue as
questions (they rewrite summaries with the shared LLM).
"""

from __future__ import annotations

import importlib.util
import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from branchwise.errors import MissingDependencyError
from branchwise.server import answers
from branchwise.server.errors import NotFound
from branchwise.server.options import apply_options
from branchwise.server.schemas import AddDocumentsRequest, AskRequest
from branchwise.server.state import (
    authorized,
    new_trace_id,
    readable,
    request_key,
    server_state,
)

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1")


def _report(report: Any) -> dict[str, Any]:
    return {"added": report.added, "replaced": report.replaced, "unchanged": report.unchanged,
            "deleted": report.deleted, "chunks_added": report.chunks_added, "chunks_removed": report.chunks_removed,
            "summaries_refreshed": report.summaries_refreshed, "llm_calls": report.llm_calls,
            "counts": report.counts}


@router.get("/indexes")
async def list_indexes(request: Request) -> dict[str, Any]:
    catalog = server_state(request).catalog
    return {"object": "list", "data": [await run_in_threadpool(_info, catalog.get(n)) for n in readable(request)]}


def _info(served: Any) -> dict[str, Any]:
    with served.lock.read():
        return served.info()  # type: ignore[no-any-return]


@router.get("/indexes/{name}")
async def index_info(name: str, request: Request) -> dict[str, Any]:
    return await run_in_threadpool(_info, authorized(request, name))


@router.get("/indexes/{name}/documents")
async def list_documents(name: str, request: Request) -> dict[str, Any]:
    served = authorized(request, name)

    def docs() -> list[dict[str, Any]]:
        with served.lock.read():
            chunks = served.index.chunks
            return [{"id": d, "chunks": len(chunks.by_doc(d))} for d in chunks.doc_ids()]

    return {"object": "list", "index": name, "data": await run_in_threadpool(docs)}


@router.post("/indexes/{name}/documents")
async def add_documents(name: str, request: Request) -> dict[str, Any]:
    """JSON documents, or multipart ``files`` (saved under safe names in the work directory)."""
    authorized(request, name)
    state = server_state(request)
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        if importlib.util.find_spec("python_multipart") is None and importlib.util.find_spec("multipart") is None:
            raise MissingDependencyError("python-multipart", "server", "uploading files")
        form = await request.form(max_files=100, max_fields=10)
        files = [(f.filename or "upload", await f.read()) for f in form.getlist("files") if hasattr(f, "read")]
        batch = await run_in_threadpool(state.uploads.save_files, name, files)
        source = batch
    else:
        try:
            body = AddDocumentsRequest.model_validate_json(await request.body())
        except ValidationError as e:
            raise RequestValidationError(e.errors()) from e
        batch = await run_in_threadpool(state.uploads.save_documents, name,
                                        [d.model_dump() for d in body.documents])
        source = batch / "documents.jsonl"
    report = await state.runner.run(name, lambda: state.catalog.update(name, "add", [source]))
    log.info("index %s: added %d, replaced %d document(s)", name, len(report.added), len(report.replaced))
    return {"object": "index.update", "index": name, **_report(report)}


@router.delete("/indexes/{name}/documents/{doc_id:path}")
async def delete_document(name: str, doc_id: str, request: Request) -> dict[str, Any]:
    served = authorized(request, name)
    state = server_state(request)
    if doc_id not in served.index.chunks.doc_ids():
        raise NotFound(f"index {name!r} has no document {doc_id!r}.",
                       fix=f"list its documents with GET /v1/indexes/{name}/documents.")
    report = await state.runner.run(name, lambda: state.catalog.update(name, "delete", [doc_id]))
    log.info("index %s: deleted %s", name, doc_id)
    return {"object": "index.update", "index": name, **_report(report)}


@router.post("/indexes/{name}/ask")
async def ask(name: str, body: AskRequest, request: Request) -> JSONResponse:
    served = authorized(request, name)
    state = server_state(request)
    history = [t.model_dump() for t in body.history]
    state.check_question(body.question, history)
    options = body.options.as_dict() if body.options else {}
    apply_options(served.settings, options)  # a bad option fails now, before queueing
    trace_id = new_trace_id()
    answer = await state.runner.run(name, lambda: state.ask(name, body.question, history, options, trace_id))
    return JSONResponse(answers.ask_response(answer, name), headers={"X-Branchwise-Trace-Id": trace_id})


@router.get("/traces/{trace_id}")
def get_trace(trace_id: str, request: Request) -> dict[str, Any]:
    state = server_state(request)
    found = state.traces.get(trace_id)
    if found is None:
        raise NotFound(f"there is no trace {trace_id!r} (or it is older than the last {state.traces.limit}).",
                       fix="use the trace_id of a recent answer.")
    index, trace = found
    state.keys.check(index, request_key(request))
    request.state.index = index
    return trace
