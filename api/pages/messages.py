"""What a person reads when the API refuses something: one Chinese message per error code.

The API's `message` is English and written for developers; no page shows it. Every page loads
this catalog (`/messages.js`, built from the dicts below) and shows `errorText(code, status)`.
`tests/unit/test_error_messages.py` reads every code the code base can answer and fails on one
without a message here. Each message says what to do next.
"""

from __future__ import annotations

import json

# Exact codes first; a code built from a registry kind (`member_not_found`, `unknown_grid`) falls
# back to its pattern below when it has no entry of its own.
MESSAGES: dict[str, str] = {
    # binding a phone (activation codes)
    "activation_not_found": "激活码不正确，请核对后重新输入；没有激活码？请联系社区",
    "activation_used": "此激活码已使用过，请向社区索取新的激活码",
    "activation_expired": "此激活码已过期，请向社区索取新的激活码",
    "too_many_attempts": "尝试次数过多，请15分钟后再试",
    "member_inactive": "报到关系已变更（已转出或离开），不能绑定手机，请联系社区",
    # scanning
    "member_not_active": "您的报到关系已变更，请联系社区",
    "station_code_expired": "二维码已过期，请重新扫描站点屏幕上的二维码",
    "scanned_at_outside_code_window": "记录时间与二维码显示的时间不符，请在站点重新扫描屏幕上的二维码",
    "poster_not_accepted": "本站点不接受纸质二维码，请扫描站点屏幕上正在显示的二维码",
    "poster_scan_backdated": "本站点不接受延后提交的纸质二维码记录，请在站点重新扫码",
    "invalid_station_token": "二维码无效，请扫描站点张贴的最新二维码",
    "scanned_at_out_of_range": "记录时间超出允许范围（离线记录最长保留72小时），请联系社区补录",
    "scanned_at_invalid": "记录时间无效，请检查手机时间后重新扫码",
    "station_not_found": "站点不存在或已停用，请联系社区",
    "member_not_found": "未找到您的党员信息，请联系社区",
    "rate_limited": "操作太频繁，请稍等一分钟再试",
    "kafka_unavailable": "服务暂时繁忙，记录未保存，请稍后重试",
    # the check-in edge (issue 16): pages and reads are behind it, check-ins are not
    "reads_unavailable": "查询服务暂时不可用，扫码签到不受影响，请稍后再试",
    "payload_too_large": "提交的内容过大，请精简后重试",
    "malformed_body": "提交的内容格式不正确，请刷新页面后重试",
    "internal_error": "系统出现问题，请稍后重试；如多次出现请联系社区",
    # signing in
    "unauthorized": "登录已失效，请重新绑定或重新登录",
    "forbidden": "当前身份无权进行此操作，如有疑问请联系社区",
    "invalid_token": "令牌无效，请核对后重新粘贴",
    "unknown_subject": "令牌对应的对象不存在，请核对编号",
    # records of service and history
    "record_not_found": "未找到此验证码对应的服务证明，请核对验证码",
    "registry_incomplete": "您的单位或社区信息不完整，请联系社区",
    "invalid_range": "开始日期不能晚于结束日期，请重新选择",
    "invalid_week": "周次格式不正确，请重新选择",
    "invalid_level": "这一级不能按所选方式细分，请重新选择",
    "invalid_window": "热力图的周次范围不正确（1至52周，开始周不能晚于结束周），请重新选择",
    "invalid_period": "期间格式不正确（例如 2026、2026-Q4、2026-11），请重新选择",
    "invalid_time": "时间需包含时区，请重新填写",
    # reviews
    "session_open": "该服务尚未结束，结束后再审核",
    "review_window_closed": "该服务已超过可审核期限，不能再审核",
    # feedback, campaigns, lists
    "session_not_rateable": "该服务记录不能评价（未完成或未认定）",
    "session_not_evidence": "该服务记录不能作为完成凭证，请选择已完成的服务",
    "duplicate_member": "名单中有重复的党员，请删除重复项后再提交",
    "duplicate_grid": "同一网格列了两次，请合并后再提交",
    "grid_not_in_community": "所选网格不属于该社区，请重新选择",
    "member_not_in_community": "该党员不在本社区报到，请重新选择",
    "already_claimed": "该微心愿已被认领",
    "already_dispatched": "该微心愿已派单，请刷新后查看",
    "already_exists": "该记录已存在，请刷新后查看",
    "not_accepted": "该微心愿尚未接单，请先接单",
    "not_assignee": "只有被派单的党员或单位可以进行此操作",
    "missing_field": "信息不完整，请补全后再提交",
    "evidence_mismatch": "所选服务记录与接单人不符，请重新选择",
    "invalid_project": "项目与资源单位不符，请重新选择",
    "invalid_action": "此操作不适用于当前状态，请刷新后再试",
    "invalid_transition": "当前状态不能进行此操作，请刷新后再试",
    "stale_project": "项目已变更，请刷新后再试",
    "resource_unavailable": "该资源已被占用或撤回，请选择其他资源",
    "resource_not_offered": "该资源不向本社区提供，请选择其他资源",
    # excused weeks (请假) and standing posts (岗位认领)
    "week_too_late": "该周已结束超过7天，不能再请假；如有特殊情况请联系社区",
    "week_too_far": "只能为今后8周内的周次请假，请重新选择",
    "invalid_weeks": "请选择要请假的周次（一次最多10周）",
    "already_requested": "所选周次已有待审批或已批准的请假，请勿重复申请",
    "already_decided": "该请假申请已处理，请刷新后查看",
    "reason_required": "不批准时请填写原因",
    "post_taken": "该岗位已有人认领，请选择其他岗位",
    "post_claim_pending": "您已申请认领该岗位，请等待社区审批",
    "post_already_held": "您已是该岗位的认领人",
    "no_post_claim": "该党员没有待审批的认领申请，请刷新后查看",
    "not_post_holder": "只有岗位的认领人可以退出该岗位；如岗位无人认领则无需结束",
    "post_exists": "该岗位已存在，请刷新后查看",
    "not_level5_grid": "岗位须设在五级网格（楼栋、单元或院落），请重新选择网格",
    "invalid_filter": "筛选条件有误，请刷新后重试",
    # assessment rules
    "invalid_rules": "考核规则填写有误，请检查后重新发布",
    "rules_version_not_found": "没有这个版本的考核规则，请重新选择",
    # the registry
    "batch_too_large": "一次提交的条目过多（最多5000条），请分批提交",
    "builtin_station_kind": "内置站点类型不能修改",
    "station_kind_exists": "该站点类型已存在",
    "grid_name_taken": "本社区已有同名网格，请换一个名称",
    "invalid_grid": "网格信息有误，请检查上级网格与层级",
    "invalid_member": "党员信息有误，请检查后重新填写",
    "invalid_phone": "手机号码应为11位大陆手机号，请核对",
    "phone_taken": "该手机号已被其他党员使用，请核对",
    # imports
    "file_too_large": "文件过大，请拆分后分批导入",
    "multipart_required": "请选择文件后再上传",
    "bad_multipart": "上传内容无法解析，请重新选择文件",
    "missing_file": "请选择要导入的文件",
    "unsupported_file": "无法读取该文件，请使用模板（CSV 或 XLSX）",
    "empty_file": "文件是空的，请填写后再导入",
    "bad_header": "表头与模板不一致，请下载模板核对",
    "no_rows": "文件只有表头，没有党员数据",
    "too_many_rows": "一次导入的行数过多，请拆分成几个文件",
    "rows_rejected": "部分行有误，未导入；请按提示修改后重新导入",
    # assisted and team check-in, WeChat messages (issue 14)
    "not_in_community": "党员和站点须属于本社区，请重新选择",
    "not_in_team": "所选党员不在您的团队中，请刷新名单后重新选择",
    "team_too_large": "一次签到的人数超过上限，请分批签到",
    "wechat_off": "本系统暂未开通微信消息提醒",
    "wechat_bind_failed": "微信授权未成功，请重新打开小程序后再试",
    # the unit's loop (issue 15)
    "not_reported": "该党员尚未登记报到日期，不能出具报到回执",
    "invalid_quarter": "季度格式不正确（例如 2026-Q4），请重新选择",
    # records of service by the national rules (issue 15)
    "invalid_volunteer_no": "志愿者编号格式不正确（6至32位字母或数字），请按全国志愿服务信息系统中的编号填写",
    "citizen_id_refused": "这是身份证号码，本系统不保存身份证号码；请填写全国志愿服务信息系统中的志愿者编号",
    # HTTP itself
    "invalid_request": "填写的内容有误，请检查后重试",
    "not_found": "要找的内容不存在，请返回重试",
    "method_not_allowed": "不支持此操作，请刷新页面后重试",
    "http_error": "请求未成功，请稍后重试",
    # service slots and sign-up (报名)
    "already_signed_up": "您已报名此活动，无需重复报名",
    "signup_closed": "报名已截止，请选择其他活动时段",
    "unit_not_allowed": "此活动仅限指定单位的党员报名，请选择其他活动",
    "activity_not_in_community": "只能报名本人报到社区的活动，请选择本社区的活动",
    "activity_cancelled": "此活动已取消，请选择其他活动时段",
    "not_signed_up": "您尚未报名此活动，请刷新后查看",
    "cancel_closed": "已过取消报名的截止时间，如不能参加请联系社区",
    "activity_over": "活动已结束，不能再取消，请刷新后查看",
    "invalid_activity": "活动信息填写有误（时间、名额或截止时间），请检查后重新提交",
    "station_not_in_community": "所选站点不属于本社区，请重新选择",
    "grid_not_level_5": "请选择五级网格（楼栋、院落）",
}

# A code made from a kind of record (f"{kind}_not_found", f"unknown_{kind}", f"invalid_{kind}").
PATTERNS: dict[str, str] = {
    "*_not_found": "要找的记录不存在或无权查看，请刷新后重试",
    "unknown_*": "所选的对象不存在，请刷新后重新选择",
    "invalid_*": "填写的信息有误，请检查后重新提交",
}

# Nothing reached the server, or it answered without a body we can read.
NETWORK = "网络不可用，请检查网络后再试"
BY_STATUS: dict[int, str] = {
    401: MESSAGES["unauthorized"],
    403: MESSAGES["forbidden"],
    404: MESSAGES["not_found"],
    413: MESSAGES["payload_too_large"],
    429: MESSAGES["rate_limited"],
    503: "服务暂时不可用，请稍后重试",
}
UNKNOWN = "操作未成功，请稍后重试；如多次出现请联系社区"


def _matches(pattern: str, code: str) -> bool:
    head, _, tail = pattern.partition("*")
    return len(code) > len(head) + len(tail) and code.startswith(head) and code.endswith(tail)


def message_for(code: str) -> str | None:
    """The catalog's message for a code or a pattern of codes (`*_not_found`), if any."""
    if code in MESSAGES:
        return MESSAGES[code]
    if code in PATTERNS:
        return PATTERNS[code]
    for pattern, text in PATTERNS.items():
        if _matches(pattern, code):
            return text
    return None


def script() -> str:
    """`/messages.js`: the catalog and `errorText(code, status)` for every page's scripts."""
    data = json.dumps(
        {
            "messages": MESSAGES,
            "patterns": PATTERNS,
            "network": NETWORK,
            "byStatus": {str(k): v for k, v in BY_STATUS.items()},
            "unknown": UNKNOWN,
        },
        ensure_ascii=False,
        indent=1,
    )
    return f"""// Generated from api/pages/messages.py: the Chinese message for every error code.
"use strict";
const ERROR_CATALOG = {data};
// What to show for a refused request: never the server's English `message`.
function errorText(code, status) {{
  const c = ERROR_CATALOG;
  if (code === "network") return c.network;
  if (code && Object.prototype.hasOwnProperty.call(c.messages, code)) return c.messages[code];
  for (const p of Object.keys(c.patterns)) {{
    const [head, tail] = p.split("*");
    if (code && code.length > head.length + tail.length && code.startsWith(head)
        && code.endsWith(tail)) return c.patterns[p];
  }}
  return c.byStatus[String(status)] || c.unknown;
}}
// The message for a fetch Response that was not ok (reads its error body).
async function responseErrorText(r) {{
  const body = await r.json().catch(() => ({{}}));
  return errorText(body && body.error && body.error.code, r.status);
}}
"""
