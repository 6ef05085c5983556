"""Cross-modal search: ``POST /similar``, by a sentence or an item (JSON) or an uploaded image or sound."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from mmrec.service.deps import ServiceDep, json_body, media_links, request_type, require_read, validate
from mmrec.service.errors import error_responses
from mmrec.service.schemas import (
    MEDIA_KINDS,
    Modality,
    QueryInfo,
    SimilarMatch,
    SimilarRequest,
    SimilarResponse,
    SimilarUpload,
)
from mmrec.service.uploads import form_value, sniff_upload

router = APIRouter(tags=["search"], dependencies=[Depends(require_read)])

#: Matches of a search and their items' media flags (item id → (has_image, has_audio)).
_Found = tuple[list[Any], dict[str, tuple[bool, bool]]]

# The route reads its body itself (JSON or multipart), so FastAPI cannot document it: this is the schema
# (mmrec.service.app publishes the two models under components).
_SIMILAR_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/SimilarRequest"}},
            "multipart/form-data": {"schema": {"$ref": "#/components/schemas/SimilarUpload"}},
        },
    }
}


@router.post(
    "/similar",
    response_model=SimilarResponse,
    responses=error_responses(413, 415),
    openapi_extra=_SIMILAR_BODY,
    summary="Items similar to a sentence, an item, an image or a sound",
)
async def similar(request: Request, service: ServiceDep) -> SimilarResponse:
    """Cross-modal search. Send JSON `{"text": …}` or `{"item": …}`, or upload one file as
    `multipart/form-data` in a field named `image` or `audio` (with optional `k`, `modality`, `where`
    fields). Uploads are checked by content: another type is answered 415, an undecodable file 422."""
    if request_type(request) == "multipart/form-data":
        return await _similar_upload(request, service)
    body = validate(SimilarRequest, await json_body(request))
    kind: Literal["text", "item"] = "text" if body.text is not None else "item"
    value = body.text if body.text is not None else body.item
    assert value is not None  # SimilarRequest requires exactly one of text and item

    def work() -> _Found:
        def search() -> list[Any]:
            return service.engine.similar(**{kind: value}, k=body.k, modality=body.modality, where=body.where)

        if kind == "text":  # only a sentence runs a model; a search by item is a vector search
            with service.model_lock:
                matches = search()
        else:
            matches = search()
        return matches, service.engine.media_flags([m.id for m in matches])

    matches, flags = await service.run(work)
    return _similar_response(request, QueryInfo(kind=kind, value=value), body.modality, matches, flags)


async def _similar_upload(request: Request, service: ServiceDep) -> SimilarResponse:
    """``POST /similar`` with one uploaded file: checked by size and content, searched from a temporary copy."""
    form = await request.form(max_files=2, max_fields=10)
    try:
        files = {name: v for name, v in form.multi_items() if isinstance(v, UploadFile)}
        kinds = [k for k in MEDIA_KINDS if k in files]
        if len(kinds) != 1 or len(files) != 1:
            raise RequestValidationError(
                [
                    {
                        "type": "value_error",
                        "loc": ("body",),
                        "msg": "upload exactly one file, in a form field named `image` or `audio`",
                    }
                ]
            )
        kind = kinds[0]
        fields = validate(
            SimilarUpload,
            {n: form_value(form, n) for n in ("k", "modality", "where") if form_value(form, n) is not None},
        )
        upload = files[kind]
        size = upload.size
        if size is not None and size > service.limits.max_upload_bytes:
            raise HTTPException(
                413, f"upload too large ({size / 2**20:.1f} MiB > {service.limits.max_upload_bytes / 2**20:.1f} MiB)"
            )
        if size == 0:
            raise RequestValidationError([{"type": "value_error", "loc": ("body", kind), "msg": "the file is empty"}])

        def work() -> _Found:
            suffix = sniff_upload(kind, upload.file, upload.content_type)
            # The decoders take a path; the suffix is the sniffed format's, never the client's file name.
            with tempfile.TemporaryDirectory(prefix="mmrec-upload-") as tmp:
                path = Path(tmp) / f"query{suffix}"
                with open(path, "wb") as out:
                    shutil.copyfileobj(upload.file, out)
                with service.model_lock:
                    matches = service.engine.similar(
                        **{kind: path}, k=fields.k, modality=fields.modality, where=fields.where
                    )
            return matches, service.engine.media_flags([m.id for m in matches])

        matches, flags = await service.run(work)
        name = (upload.filename or "upload")[:200]
        return _similar_response(request, QueryInfo(kind=kind, value=name), fields.modality, matches, flags)
    finally:
        await form.close()


def _similar_response(
    request: Request,
    query: QueryInfo,
    modality: Modality,
    matches: list[Any],
    flags: dict[str, tuple[bool, bool]],
) -> SimilarResponse:
    """The answer of ``POST /similar``: the matches with links to their media."""
    return SimilarResponse(
        query=query,
        modality=modality,
        results=[
            SimilarMatch(
                id=m.id,
                title=m.title,
                score=m.score,
                matched=m.matched,
                modality_scores=m.modality_scores,
                media=media_links(request, m.id, *flags.get(m.id, (False, False))),
            )
            for m in matches
        ],
    )
