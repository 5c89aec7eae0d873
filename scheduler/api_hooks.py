"""The HTTP routes of contract 5 (webhooks and calendars), on the same app, auth, error
envelope and middleware as contract 4 (:mod:`scheduler.api`)::

    POST   /v1/webhooks                      register (201; the secret is shown only here)
    GET    /v1/webhooks                      the caller's webhooks
    GET    /v1/webhooks/{id}/deliveries      the attempts log and outbox counts
    DELETE /v1/webhooks/{id}                 remove (pending deliveries are dropped)
    POST   /v1/calendars                     add an iCalendar feed (201; synced at once)
    GET    /v1/calendars                     the caller's calendars, last sync, their VPs
    DELETE /v1/calendars/{id}                remove; cancels its VPs that have not started

They are served when the app has a :class:`scheduler.hooks.HookService` (``vp serve``);
without one they answer 404 ``not-found`` (the document still lists them).
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from scheduler.api import _INVALID, _UNAUTHORIZED, CallerDep, Responses, _error
from scheduler.errors import NotFound
from scheduler.hooks import (
    Calendar,
    CalendarList,
    CalendarRequest,
    DeliveryList,
    HookService,
    WebhookCreated,
    WebhookList,
    WebhookRequest,
)

router = APIRouter()
_ID = re.compile(r"^(wh|cal)_[0-9a-f]{16}$")
_NO_WEBHOOK: Responses = {**_UNAUTHORIZED, 404: _error("no such webhook")}
_NO_CALENDAR: Responses = {**_UNAUTHORIZED, 404: _error("no such calendar")}
_REGISTER_ERRORS: Responses = {
    400: _error("malformed body"),
    **_UNAUTHORIZED,
    404: _error("this control plane serves no webhooks or calendars"),
    413: _error("body too large"),
    415: _error("not application/json"),
    **_INVALID,
    429: _error("too many registrations"),
}


def _hooks(request: Request) -> HookService:
    hooks: HookService | None = getattr(request.app.state, "hooks", None)
    if hooks is None:
        raise NotFound("this control plane has no webhooks or calendars")
    return hooks


HooksDep = Annotated[HookService, Depends(_hooks)]


def _checked(kind: str, value: str) -> str:
    if not _ID.match(value):
        raise NotFound(f"no {kind} {value[:64]!r}")
    return value


@router.post(
    "/v1/webhooks",
    status_code=201,
    response_model=WebhookCreated,
    operation_id="createWebhook",
    summary="Register a webhook (the signing secret is returned only here)",
    responses={201: {"description": "registered"}, **_REGISTER_ERRORS},
)
async def create_webhook(body: WebhookRequest, caller: CallerDep, hooks: HooksDep) -> Response:
    created = await hooks.create_webhook(caller, body)
    headers = {"Location": f"/v1/webhooks/{created.webhook_id}"}
    return JSONResponse(created.model_dump(mode="json"), 201, headers=headers)


@router.get(
    "/v1/webhooks",
    response_model=WebhookList,
    operation_id="listWebhooks",
    summary="The caller's webhooks (never their secrets)",
    responses={200: {"description": "the webhooks"}, **_NO_WEBHOOK},
)
async def list_webhooks(caller: CallerDep, hooks: HooksDep) -> Response:
    found = await hooks.list_webhooks(caller)
    return JSONResponse({"webhooks": [w.model_dump(mode="json") for w in found]})


@router.get(
    "/v1/webhooks/{webhook_id}/deliveries",
    response_model=DeliveryList,
    operation_id="listWebhookDeliveries",
    summary="Delivery attempts of a webhook, newest first",
    responses={
        200: {"description": "the attempts"},
        **_UNAUTHORIZED,
        404: _error("no such webhook"),
    },
)
async def webhook_deliveries(webhook_id: str, caller: CallerDep, hooks: HooksDep) -> Response:
    found = await hooks.deliveries(caller, _checked("webhook", webhook_id))
    return JSONResponse(found.model_dump(mode="json"))


@router.delete(
    "/v1/webhooks/{webhook_id}",
    status_code=204,
    operation_id="deleteWebhook",
    summary="Remove a webhook",
    responses={204: {"description": "removed"}, **_NO_WEBHOOK},
)
async def delete_webhook(webhook_id: str, caller: CallerDep, hooks: HooksDep) -> Response:
    await hooks.delete_webhook(caller, _checked("webhook", webhook_id))
    return Response(status_code=204)


@router.post(
    "/v1/calendars",
    status_code=201,
    response_model=Calendar,
    operation_id="createCalendar",
    summary="Add an iCalendar feed that schedules VPs (synced at once, then polled)",
    responses={201: {"description": "added"}, **_REGISTER_ERRORS},
)
async def create_calendar(body: CalendarRequest, caller: CallerDep, hooks: HooksDep) -> Response:
    created = await hooks.create_calendar(caller, body)
    headers = {"Location": f"/v1/calendars/{created.calendar_id}"}
    return JSONResponse(created.model_dump(mode="json"), 201, headers=headers)


@router.get(
    "/v1/calendars",
    response_model=CalendarList,
    operation_id="listCalendars",
    summary="The caller's calendars: last sync and the VPs they scheduled",
    responses={200: {"description": "the calendars"}, **_NO_CALENDAR},
)
async def list_calendars(caller: CallerDep, hooks: HooksDep) -> Response:
    found = await hooks.list_calendars(caller)
    return JSONResponse({"calendars": [c.model_dump(mode="json") for c in found]})


@router.delete(
    "/v1/calendars/{calendar_id}",
    status_code=204,
    operation_id="deleteCalendar",
    summary="Remove a calendar and cancel its VPs that have not started",
    responses={204: {"description": "removed"}, **_NO_CALENDAR},
)
async def delete_calendar(calendar_id: str, caller: CallerDep, hooks: HooksDep) -> Response:
    await hooks.delete_calendar(caller, _checked("calendar", calendar_id))
    return Response(status_code=204)
