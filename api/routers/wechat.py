"""A member's WeChat binding, for reminders as subscription messages (services.wechat).

Minimal by design: only the openid this mini-program's login code maps to is kept (topic
`wechat-bindings`, table `wechat_bindings`), never a name, avatar or union id; the member may
remove it. Off (409 `wechat_off`) while WECHAT_APP_ID is empty.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from api.deps import Caller, Ctx, gate, readable_member
from api.errors import ApiError
from api.openapi import errors
from services import topics
from services.events import WechatBound, derived_id, utcnow
from services.wechat import BindFailed, WechatSubscription

router = APIRouter(prefix="/v1/me", tags=["reminders"])


class WechatBindingIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
    )
    code: str = Field(
        min_length=1, max_length=128, description="the code the mini-program's wx.login gave"
    )


class WechatBindingOut(BaseModel):
    member_id: str
    bound: bool


def _publish(ctx: Ctx, member_id: str, openid: str) -> None:
    now = utcnow()
    event = WechatBound(
        event_id=derived_id("wechat", member_id, now.isoformat()),
        occurred_at=now,
        member_id=member_id,
        openid=openid,
    )
    ctx.publisher.send_sync(topics.WECHAT_BINDINGS, member_id, event)


def _wechat(ctx: Ctx) -> WechatSubscription:
    if not WechatSubscription.enabled(ctx.settings):
        raise ApiError(409, "wechat_off", "WeChat messages are not configured here")
    return WechatSubscription(ctx.settings)


@router.post(
    "/wechat-binding",
    response_model=WechatBindingOut,
    responses=errors(
        404,
        409,
        502,
        why={
            409: "WeChat is not configured here (`wechat_off`)",
            502: "WeChat gave no account for the code (`wechat_bind_failed`)",
        },
    ),
)
async def bind_wechat(body: WechatBindingIn, caller: Caller, ctx: Ctx) -> WechatBindingOut:
    """The calling member binds this WeChat account: reminders then also arrive as WeChat
    subscription messages (once the member accepted the template in the mini-program)."""
    gate(caller, "reminders")
    member = await asyncio.to_thread(
        readable_member, ctx, caller, caller.subject_id, "reminders", "change"
    )
    wechat = _wechat(ctx)
    try:
        openid = await asyncio.to_thread(wechat.bind, body.code)
    except BindFailed as exc:
        raise ApiError(
            502, "wechat_bind_failed", f"WeChat gave no account for this code: {exc}"
        ) from exc
    finally:
        wechat.close()
    await asyncio.to_thread(_publish, ctx, member.id, openid)
    return WechatBindingOut(member_id=member.id, bound=True)


@router.delete("/wechat-binding", response_model=WechatBindingOut, responses=errors(404))
def unbind_wechat(caller: Caller, ctx: Ctx) -> WechatBindingOut:
    """The calling member removes their WeChat binding (kept as an empty openid)."""
    gate(caller, "reminders")
    member = readable_member(ctx, caller, caller.subject_id, "reminders", "change")
    _publish(ctx, member.id, "")
    return WechatBindingOut(member_id=member.id, bound=False)
