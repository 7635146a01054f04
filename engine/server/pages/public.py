"""The public response-time page: the live figure alone (no message, no handle), for
anyone, where the configuration turns it on (``PLAYBOOK_PUBLIC_RESPONSE_TIME``); else
the page does not exist (404)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from .frame import PageRoute, app_of, page

router = APIRouter(route_class=PageRoute, include_in_schema=False)


@router.get("/public/response-time")
def response_time(request: Request):
    from datetime import timedelta

    from engine.app import inbound
    from engine.format.durations import format_duration

    figure = inbound.public_response_time(app_of(request))

    def said(seconds):
        return None if seconds is None else format_duration(timedelta(seconds=seconds))

    return page(request, "public_response_time.html.j2", figure=figure,
                median=said(figure["median_response_seconds"]), longest=said(figure["longest_wait_seconds"]),
                share=None if figure["share_within_target"] is None else round(figure["share_within_target"] * 100))
