"""Users: ``GET /users/{id}/recommendations``, ``POST /interactions`` and ``DELETE /users/{id}``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.exceptions import HTTPException

from mmrec.service.deps import ServiceDep, check_id, json_body, media_links, require_read, require_write, validate
from mmrec.service.errors import ERRORS, error_responses, validation_message
from mmrec.service.schemas import (
    MAX_WHERE_CHARS,
    ForgetResponse,
    InteractionIn,
    InteractionOut,
    InteractionsResponse,
    Modality,
    RecommendationOut,
    RecommendationsResponse,
)

# No router-wide auth: recommendations are reads, interactions writes.
router = APIRouter(tags=["users"])


@router.get(
    "/users/{user_id:path}/recommendations",
    response_model=RecommendationsResponse,
    dependencies=[Depends(require_read)],
    responses=ERRORS,
    summary="Recommendations for a user",
)
async def recommendations(
    request: Request,
    service: ServiceDep,
    user_id: str,
    k: Annotated[int, Query(ge=1, le=1000, description="Results wanted.")] = 10,
    where: Annotated[
        str | None, Query(max_length=MAX_WHERE_CHARS, description="SQL filter on item columns, applied in the search.")
    ] = None,
    modality: Annotated[
        Modality, Query(description="Rank by fused vectors (`any`) or one modality's vectors.")
    ] = "any",
    diversity: Annotated[float, Query(ge=0, le=1, description="0 = relevance only … 1 = most varied (MMR).")] = 0.0,
    explain: Annotated[bool, Query(description="Name the history items behind each recommendation.")] = False,
    include_seen: Annotated[bool, Query(description="Keep items the user already interacted with.")] = False,
    query: Annotated[
        str | None, Query(min_length=1, max_length=4000, description="Onboarding text for a user without history.")
    ] = None,
) -> RecommendationsResponse:
    """The user's live profile drives the ranking; an unknown user or one without positive history gets the
    cold-start answer (`strategy` says which, `message` why)."""
    check_id(user_id, "user_id")

    def work() -> tuple[Any, dict[str, tuple[bool, bool]]]:
        def run() -> Any:
            return service.engine.recommend(
                user_id,
                k,
                where=where,
                modality=modality,
                diversity=diversity,
                explain=explain,
                include_seen=include_seen,
                query=query,
            )

        if query is not None:  # only the onboarding text runs a model
            with service.model_lock:
                result = run()
        else:
            result = run()
        return result, service.engine.media_flags([r.id for r in result.items])

    result, flags = await service.run(work)
    # Which model answered, for the access log line and the metrics.
    request.state.log = {"strategy": result.strategy}
    if service.metrics is not None:
        service.metrics.recommendations.labels(result.strategy).inc()
    return RecommendationsResponse(
        user=result.user,
        strategy=result.strategy,
        cold_start=result.cold_start,
        message=result.message,
        items=[
            RecommendationOut(
                **{k: v for k, v in r.to_dict().items()},
                media=media_links(request, r.id, *flags.get(r.id, (False, False))),
            )
            for r in result.items
        ],
    )


# The route reads its body itself (an object or a list, with per-entry errors), so FastAPI cannot document
# it: this is the schema (mmrec.service.app publishes InteractionIn under components).
_INTERACTIONS_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "anyOf": [
                        {"$ref": "#/components/schemas/InteractionIn"},
                        {"type": "array", "items": {"$ref": "#/components/schemas/InteractionIn"}},
                    ]
                }
            }
        },
    }
}


@router.post(
    "/interactions",
    response_model=InteractionsResponse,
    dependencies=[Depends(require_write)],
    responses=error_responses(413, 415),
    openapi_extra=_INTERACTIONS_BODY,
    summary="Record one interaction or a batch",
)
async def post_interactions(request: Request, service: ServiceDep) -> InteractionsResponse:
    """One object, or a list of them. The users' profiles are updated before the answer, so the next
    recommendations reflect them. A batch is all or nothing: when any entry is bad (invalid field, unknown
    item) nothing is recorded and the 422 answer lists every bad entry by index. A single interaction with
    an unknown item is a 404."""
    data = await json_body(request)
    raw = data if isinstance(data, list) else [data]
    if not raw:
        raise RequestValidationError([{"type": "too_short", "loc": ("body",), "msg": "the batch is empty"}])
    if len(raw) > service.limits.max_batch:
        raise HTTPException(413, f"batch of {len(raw)} interactions; at most {service.limits.max_batch} per request")
    single = not isinstance(data, list)
    entries: list[tuple[int, InteractionIn]] = []
    bad: list[tuple[int, str]] = []
    if single:
        # One object: its schema errors are an ordinary 422, located like FastAPI's.
        entries.append((0, validate(InteractionIn, data)))
    else:
        # A batch: every bad entry is collected and reported by index (BatchError), none stops the check.
        for i, entry in enumerate(raw):
            try:
                entries.append((i, InteractionIn.model_validate(entry)))
            except ValidationError as e:
                bad.append((i, validation_message(e.errors(include_url=False, include_input=False))))
    inters, added, duplicates, users = await service.run(service.record, entries, bad, single=single)
    return InteractionsResponse(
        recorded=added,
        duplicates=duplicates,
        users=users,
        interactions=[
            InteractionOut(user=x.user, item=x.item, event=x.event, weight=x.weight, at=x.ts) for x in inters
        ],
    )


@router.delete(
    "/users/{user_id:path}",
    response_model=ForgetResponse,
    dependencies=[Depends(require_write)],
    responses=ERRORS,
    summary="Forget a user",
)
async def forget_user(service: ServiceDep, user_id: str) -> ForgetResponse:
    """Delete the user's events and profile from every file and table version of the database (the right
    to erasure). Trained hybrid checkpoints that saw the user are marked as needing a retrain. Items are never
    touched. Needs the API key whenever the server has one. An unknown user is a 404 (nothing is changed)."""
    check_id(user_id, "user_id")
    report = await service.run(service.engine.forget, user_id)
    if not report.found:
        raise HTTPException(404, f"no user {user_id!r}: nothing stored, nothing removed")
    return ForgetResponse(**report.to_dict())
