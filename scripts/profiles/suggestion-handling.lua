-- suggestion-handling: document 001 客户意见建议收集处理制度 (shared/seeds/001).
--
-- What it takes from the document (docs/profiles.md has the full mapping):
--   四(一)1  classified within 2 h into 产品质量 / 服务质量 / 价格 / 交付时间 / 其他
--   四(二)2  severity and impact decide the priority; 影响较大 -> a meeting at once (notify)
--   四(三)1  handed to the responsible department, lead + collaborating departments
--   四(三)2  the department files a plan (处理方案) within 24 h -> `plan`; resolving needs it
--   四(四)1  solved within 48 h of the task when it can be solved at once, otherwise by the
--            date promised to the customer (planned.data.due) -> `resolve`
--   四(五)1  result to customer service within 24 h of the solution (`result_to_service`),
--            customer service answers the customer within 48 h -> `result`, `reply`
--   四(五)2  revisit within 7 days of the answer -> `revisit`; an unsatisfied customer
--            (satisfaction <= 2) reopens the case, which is analysed and handled again
--            until the customer is satisfied: `plan` starts a new cycle on `reopened`, the
--            rest of the chain follows its own start events, so the next revisit is due 7
--            days after the new answer (`replied`); a complaint or suggestion closes only
--            after a satisfied revisit
--   六(二)   KPIs (collection and handling timeliness ...) -> `score`
-- All deadlines are in hours or days around the clock: the hotline is 24 h (三(一)2).
local C = require("voc_common")
local K = C.keywords
local contains_any = C.contains_any

local NOTIFIER = "journal"

local CATEGORIES = C.rules {
  { category = "产品质量", department = "质量部", collaborators = { "售后服务部" },
    keywords = {
      "质量", "品质", "坏了", "损坏", "故障", "失灵", "漏水", "漏电", "异响", "噪音", "破损",
      "开裂", "生锈", "脱落", "掉漆", "变形", "做工", "瑕疵", "次品", "不合格", "缺陷",
      "冒烟", "异味", "死机", "当机", "返修", "又坏", "不制冷", "不加热", "不能加热",
    } },
  { category = "交付时间", department = "销售部", collaborators = { "物流部" },
    keywords = {
      "发货", "送货", "配送", "物流", "快递", "到货", "交货", "交付", "送达", "延误", "延迟",
      "迟迟", "还没到", "没收到", "催单", "工期", "上门安装", "没有上门", "改约",
    } },
  { category = "价格", department = "销售部", collaborators = { "财务部" },
    keywords = {
      "价格", "太贵", "贵了", "降价", "涨价", "差价", "优惠", "折扣", "收费", "乱收费", "多收",
      "报价", "性价比", "便宜", "价保", "发票",
    } },
  { category = "服务质量", department = "客户服务部", collaborators = { "售后服务部" },
    keywords = {
      "态度", "服务", "客服", "售后", "不耐烦", "爱答不理", "没人理", "推诿", "敷衍",
      "踢皮球", "挂断", "挂电话", "热线", "业务员", "销售员", "维修师傅", "安装师傅",
      "热情", "耐心", "礼貌", "专业", "回复",
    } },
}
local OTHER = { category = "其他", department = "客户服务部", collaborators = {} }

local PRIORITY = { praise = 4, opinion = 3, inquiry = 3, suggestion = 3 }
local NO_TAGS, MAJOR_TAGS = {}, { "major" }

local function classify(case)
  local text = case.normalized
  local kind = C.kind(case, text)
  local rule = C.first_rule(text, CATEGORIES) or OTHER
  local severity, priority, tags = "轻微", PRIORITY[kind] or 3, NO_TAGS
  if kind == "complaint" then
    severity, priority = "一般", 2
    if contains_any(text, C.MAJOR) then
      severity, priority, tags = "重大", 1, MAJOR_TAGS
    end
  end
  return { kind = kind, category = rule.category, severity = severity,
           department = rule.department, collaborators = rule.collaborators,
           priority = priority, tags = tags }
end

local UNSATISFIED = 2 -- revisit scores 1..5: 1-2 unsatisfied, 3 acceptable, 4-5 satisfied
local HOURS48 = 48 * 3600
local ROUND = { assigned = true, reopened = true }

-- 四(四)1: by the promised date when the plan names one, else what is left of the 48 h
-- since the task was handed over (or reopened). Evaluated when the plan is filed.
local function resolve_target(case)
  local planned = C.last_event(case, "planned")
  local now = planned and C.time(planned.at)
  if not now then return "48h" end
  local due = planned.data and C.time(planned.data.due)
  if due and due > now then return due - now end
  local start = C.last_index_of(case, ROUND)
  local since = start > 0 and C.time(case.events[start].at)
  if not since then return "48h" end
  local left = HOURS48 - (now - since)
  return left > 60 and left or 60 -- already late: due a minute after the plan
end

-- Position where the current round of handling began: the last `reopened`, else 0.
local function round_start(case)
  local _, at = C.last_event(case, "reopened")
  return at or 0
end

local NEEDS_SATISFIED_REVISIT = { complaint = true, suggestion = true }

return {
  name = "suggestion-handling",
  description = "客户意见建议收集处理制度 (document 001): 2 h / 24 h / 48 h / 24 h / 48 h / 7 d "
    .. "chain, unsatisfied revisits reopen the case",
  version = "1",

  classify = classify,
  defaults = { kind = "opinion", category = "其他", severity = "轻微",
               department = "客户服务部", priority = 3 },

  -- result_to_service: the responsible department hands its result to customer service.
  events = { "result_to_service" },

  clocks = {
    { name = "classify", start = "received", stop = "classified", target = "2h", warn = 0.8 },
    -- `reopen`: a reopened case is handled again from a new plan (四(五)2); no new
    -- `assigned` comes, so the reopening starts the plan clock.
    { name = "plan", start = "assigned", stop = "planned", target = "24h", warn = 0.8,
      reopen = true },
    { name = "resolve", start = "planned", stop = "resolved", target = resolve_target,
      warn = 0.8 },
    { name = "result", start = "resolved", stop = "result_to_service", target = "24h",
      warn = 0.8 },
    { name = "reply", start = "result_to_service", stop = "replied", target = "48h", warn = 0.8 },
    -- No `reopen`: after an unsatisfied revisit the 7 days count from the next answer to
    -- the customer, not from the reopening (that round's handling has clocks of its own).
    { name = "revisit", start = "replied", stop = "revisited", target = "7d", warn = 0.8 },
  },

  guard = function(case, event)
    local t = event.type
    if t == "resolved" and not C.has_event_after(case, "planned", round_start(case)) then
      return false, "责任部门须先制定处理方案 (planned) 并报客户服务部门备案"
    end
    if t == "result_to_service" and not C.has_event_after(case, "resolved", round_start(case)) then
      return false, "问题解决 (resolved) 后才能将处理结果反馈给客户服务部门"
    end
    if t == "replied" then
      local _, resolved = C.last_event(case, "resolved")
      if not resolved or not C.has_event_after(case, "result_to_service", resolved) then
        return false, "责任部门须先将处理结果反馈给客户服务部门 (result_to_service)"
      end
    end
    if t == "closed" and NEEDS_SATISFIED_REVISIT[case.classification.kind] then
      local s = case.satisfaction
      if not s or s <= UNSATISFIED then
        return false, "回访客户满意 (满意度 >= 3) 后才能结案"
      end
    end
    return true
  end,

  on_event = function(case, event)
    local actions = {}
    if event.type == "classified" then
      local assign = C.assign_action(case, "分类登记后分配责任部门")
      if assign then actions[#actions + 1] = assign end
      if case.classification.severity == "重大" then
        actions[#actions + 1] = { notify = NOTIFIER,
          message = "影响较大的问题, 请立即组织专题会议: " .. C.label(case) }
      end
    elseif event.type == "revisited" then
      local s = event.data and event.data.satisfaction
      if s and s <= UNSATISFIED then
        actions[#actions + 1] = { event = "reopened",
          note = string.format("回访不满意 (满意度 %d), 重新组织相关部门分析处理", s) }
        actions[#actions + 1] = { notify = NOTIFIER,
          message = string.format("回访不满意 (满意度 %d), 已重新打开: %s", s, C.label(case)) }
      end
    end
    return actions
  end,

  on_clock = function(case, clock, status)
    return C.clock_actions(case, clock, status, NOTIFIER)
  end,

  score = {
    document = "001 客户意见建议收集处理制度",
    categories = { "产品质量", "服务质量", "价格", "交付时间", "其他" },
    deadlines = { classify = "2h", plan = "24h", resolve = "48h or the promised date",
                  result = "24h", reply = "48h", revisit = "7d" },
    satisfaction = { scale = { 1, 5 }, unsatisfied_at_most = UNSATISFIED,
                     action = "reopen until satisfied" },
    report = { analysis = "monthly", survey_on_site = "half-yearly" },
    kpis = {
      { name = "collection_timeliness", label = "信息收集及时率",
        formula = "classify clocks met / classify clocks stopped" },
      { name = "handling_timeliness", label = "问题处理及时率",
        formula = "plan + resolve + result + reply clocks met / stopped" },
      { name = "revisit_rate", label = "回访率",
        formula = "revisit clocks met / replied cases" },
      { name = "satisfaction", label = "客户满意度",
        formula = "share of revisits with satisfaction >= 3" },
      { name = "reopen_rate", label = "重新处理率", formula = "reopened cases / closed cases" },
    },
  },

  tests = {
    { case = { subject = "投訴", text = "冰箱用了一週就不製冷了, 質量太差" },
      expect = { kind = "complaint", category = "产品质量", severity = "一般",
                 department = "质量部", priority = 2 } },
    { case = { text = "建议你们的会员价格再优惠一点" },
      expect = { kind = "suggestion", category = "价格", department = "销售部" } },
    { case = { text = "下单一周了还没到, 物流信息一直不更新" },
      expect = { kind = "complaint", category = "交付时间", collaborators = { "物流部" } } },
    { case = { text = "想了解一下贵公司的营业时间?" },
      expect = { kind = "inquiry", category = "其他", severity = "轻微" } },
  },
}
