-- product-feedback: document 003 产品反馈管理制度 (shared/seeds/003).
--
-- What it takes from the document (docs/profiles.md has the full mapping):
--   二       feedback from customers, employees (internal platform) and partners: case.source
--   三(一)   what must be recorded per source (customer: name, contact, product and model;
--            employee: name, department, first analysis; partner: partner name, person) ->
--            the tag `incomplete_record` when something is missing
--   三(二)1  types 功能缺陷 / 质量问题 / 易用性 / 兼容性 (+ 其他)
--   三(二)2  severity 轻微 (basic use unaffected) / 一般 (use affected) / 严重 (cannot be used
--            normally, or a safety hazard)
--   三(三)1  summarised every day -> `summary` (one working day to the responsible department)
--   三(三)3  严重 problems go to management at once: on classification the case gets
--            管理层 as collaborator, an `escalated` event and a notification
--   五(一)2  the assigner sets the handling deadline -> `plan` and `resolve`, by severity;
--            both start again when the case is reopened
--   五(四)2  quality control verifies the result -> `verify`; the reporter is told only after
--            that (五(五)1) -> `reply`, and `replied` / `closed` need a `verified` after the
--            last `resolved`
--   七(二)   KPIs -> `score`
-- The document gives no hours; the working-day targets below are this profile's choice.
local C = require("voc_common")
local K = C.keywords
local contains_any = C.contains_any

local NOTIFIER = "journal"
local MANAGEMENT = "管理层"

local function rule(category, department, collaborators, keywords)
  local severe = C.concat(collaborators, { MANAGEMENT })
  return { category = category, department = department, collaborators = collaborators,
           severe_collaborators = severe, keywords = keywords }
end

-- Compatibility first: "升级安卓14后闪退" is about the platform, not a defect of its own.
local CATEGORIES = C.rules {
  rule("兼容性", "研发部", { "质量控制部" }, {
    "兼容", "相容", "不支持", "适配", "安卓", "android", "ios", "鸿蒙", "系统版本", "版本不匹配",
    "驱动", "浏览器", "windows", "mac", "接口不匹配", "对接", "不匹配",
  }),
  rule("功能缺陷", "研发部", { "质量控制部" }, {
    "bug", "报错", "出错", "错误", "闪退", "崩溃", "死机", "当机", "卡死", "无法登录",
    "登录不了", "数据丢失", "丢失数据", "功能异常", "功能失效", "失效", "不响应", "没反应",
    "不准", "无法保存", "同步失败", "计算错误", "显示错误", "乱码",
  }),
  rule("质量问题", "生产部", { "质量控制部", "研发部" }, {
    "质量", "品质", "做工", "破损", "开裂", "裂纹", "掉漆", "生锈", "漏水", "漏电", "异响",
    "发热", "过热", "发烫", "冒烟", "鼓包", "松动", "脱落", "划痕", "瑕疵", "坏了", "损坏",
    "故障", "异味",
  }),
  rule("易用性", "研发部", { "客服部" }, {
    "难用", "不好用", "复杂", "麻烦", "找不到", "看不懂", "不方便", "不直观", "操作", "步骤",
    "界面", "介面", "字太小", "说明书", "易用", "上手", "不会用", "层级", "菜单",
  }),
}
local OTHER = { category = "其他", department = "客服部", collaborators = {},
                severe_collaborators = { MANAGEMENT } }

-- 三(二)2 严重: the product cannot be used normally, or it is a safety hazard.
local SERIOUS = K {
  "无法使用", "不能用", "用不了", "没法用", "无法正常使用", "不能正常使用", "无法启动",
  "开不了机", "打不开", "无法登录", "登录不了", "数据丢失", "丢失数据", "完全失灵", "瘫痪",
  "安全隐患", "冒烟", "起火", "着火", "爆炸", "漏电", "触电", "烫伤", "受伤", "鼓包",
}
-- 轻微: basic use unaffected.
local MINOR = K {
  "不影响使用", "不影响正常使用", "不影响基本使用", "偶尔", "轻微", "小问题", "小瑕疵", "外观",
  "划痕", "错别字", "颜色", "有点", "稍微",
}

local PRIORITY = { ["严重"] = 1, ["一般"] = 2, ["轻微"] = 3 }

local SOURCE_TAG = { customer = "source:customer", employee = "source:employee",
                     partner = "source:partner" }

local function present(v)
  return type(v) == "string" and v ~= ""
end

-- 三(一): what each source's record must hold.
local function complete(case)
  local who, f, p = case.customer or {}, case.fields or {}, case.product or {}
  if case.source == "employee" then
    -- Field names may come in either script from the internal platform's form.
    return present(who.name) and (present(f["部门"]) or present(f["部門"]) or present(f.department))
      and (present(f["初步分析"]) or present(f.analysis))
  elseif case.source == "partner" then
    return (present(f["合作伙伴"]) or present(f["合作夥伴"]) or present(f.partner)
            or present(who.account))
      and present(who.name)
  end
  return present(who.name) and present(who.contact) and present(p.name) and present(p.model)
end

local function classify(case)
  local text = case.normalized
  local kind = C.kind(case, text)
  local r = C.first_rule(text, CATEGORIES) or OTHER
  -- A report that names a defect type is a problem to handle even when it is written
  -- neutrally, as staff and partners do.
  local problem = kind == "complaint" or (kind == "opinion" and r ~= OTHER)
  local severity = "轻微"
  if problem then
    if contains_any(text, SERIOUS) then
      severity = "严重"
    elseif not contains_any(text, MINOR) then
      severity = "一般"
    end
  end
  local tags = { SOURCE_TAG[case.source] or "source:customer" }
  if severity == "严重" and contains_any(text, C.SAFETY) then tags[#tags + 1] = "safety" end
  if not complete(case) then tags[#tags + 1] = "incomplete_record" end
  return { kind = kind, category = r.category, severity = severity, department = r.department,
           collaborators = severity == "严重" and r.severe_collaborators or r.collaborators,
           priority = kind == "praise" and 4 or PRIORITY[severity], tags = tags }
end

-- Deadlines by severity, in working hours of the `workdays` calendar (9 h a day).
local function by_severity(serious, general, minor)
  return function(case)
    local s = case.classification.severity
    if s == "严重" then return serious end
    if s == "一般" then return general end
    return minor
  end
end

local function verified_since_resolved(case)
  local _, resolved = C.last_event(case, "resolved")
  return resolved ~= nil and C.has_event_after(case, "verified", resolved)
end

return {
  name = "product-feedback",
  description = "产品反馈管理制度 (document 003): sources, four problem types, 轻微/一般/严重 "
    .. "with escalation, verification by quality control before the reporter is told",
  version = "1",

  classify = classify,
  defaults = { kind = "opinion", category = "其他", severity = "轻微", department = "客服部",
               priority = 3 },

  events = { "escalated" }, -- 上报至相关领导和部门负责人 (data.to)

  clocks = {
    { name = "summary", start = "received", stop = "assigned", target = "9h",
      calendar = "workdays", warn = 0.8 },
    -- `reopen`: a reopened case (the fix did not hold) gets a new handling deadline: no new
    -- `assigned` comes, the department already has it.
    { name = "plan", start = "assigned", stop = "planned", calendar = "workdays", warn = 0.8,
      reopen = true, target = by_severity("4h", "9h", "27h") },
    { name = "resolve", start = "assigned", stop = "resolved", calendar = "workdays",
      warn = 0.8, reopen = true, target = by_severity("18h", "45h", "90h") },
    { name = "verify", start = "resolved", stop = "verified", target = "9h",
      calendar = "workdays", warn = 0.8 },
    { name = "reply", start = "verified", stop = "replied", target = "9h", calendar = "workdays",
      warn = 0.8 },
  },

  guard = function(case, event)
    if event.type == "replied" and not verified_since_resolved(case) then
      return false, "处理结果须经质量控制部门验证 (verified) 后才能反馈给反馈人"
    end
    if event.type == "closed" and case.classification.severity ~= "轻微"
        and not verified_since_resolved(case) then
      return false, "问题须经质量控制部门验证彻底解决 (verified) 后才能结案"
    end
    return true
  end,

  on_event = function(case, event)
    local actions = {}
    local c = case.classification
    if event.type == "classified" then
      local assign = C.assign_action(case, "按问题类型分配责任部门")
      if assign then actions[#actions + 1] = assign end
      if c.severity == "严重" and not C.has_event(case, "escalated") then
        actions[#actions + 1] = { event = "escalated", data = { to = MANAGEMENT },
          note = "严重问题 (无法正常使用或存在安全隐患), 立即上报" }
        actions[#actions + 1] = { notify = NOTIFIER,
          message = "严重产品问题, 请管理层立即关注: " .. C.label(case) }
      end
    elseif event.type == "revisited" and event.data and event.data.satisfaction <= 2 then
      actions[#actions + 1] = { tag = "unsatisfied" }
    end
    return actions
  end,

  on_clock = function(case, clock, status)
    return C.clock_actions(case, clock, status, NOTIFIER)
  end,

  score = {
    document = "003 产品反馈管理制度",
    sources = { "customer", "employee", "partner" },
    categories = { "功能缺陷", "质量问题", "易用性", "兼容性", "其他" },
    severities = {
      { name = "轻微", meaning = "不影响产品基本使用" },
      { name = "一般", meaning = "对产品使用有一定影响" },
      { name = "严重", meaning = "导致产品无法正常使用或存在安全隐患", escalate = MANAGEMENT },
    },
    kpis = {
      { name = "collection_timeliness", label = "反馈信息收集的及时性",
        formula = "summary clocks met / stopped" },
      { name = "record_accuracy", label = "记录完整准确",
        formula = "1 - cases tagged incomplete_record / cases" },
      { name = "handling_efficiency", label = "问题处理的效率",
        formula = "plan + resolve clocks met / stopped" },
      { name = "handling_quality", label = "问题处理的质量",
        formula = "cases verified without reopening / verified cases" },
      { name = "improvement_effect", label = "产品改进的效果",
        formula = "problems per category before vs after the improvement; satisfaction trend" },
    },
    analysis = { "statistics by type, severity and source", "trend over periods",
                 "association between problems" },
  },

  tests = {
    { case = { source = "employee", customer = { name = "李工" },
               fields = { ["部门"] = "测试部", ["初步分析"] = "内存泄漏" },
               text = "App升级后在鸿蒙系统上频繁闪退" },
      expect = { kind = "complaint", category = "兼容性", severity = "一般",
                 department = "研发部", priority = 2, tags = { "source:employee" } } },
    { case = { text = "充電時電池鼓包發燙, 存在安全隱患" },
      expect = { severity = "严重", priority = 1, category = "质量问题",
                 collaborators = { "质量控制部", "研发部", "管理层" } } },
    { case = { text = "设置页面的字太小, 老人看不清, 不过不影响使用" },
      expect = { category = "易用性", severity = "轻微" } },
  },
}
