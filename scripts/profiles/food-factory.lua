-- food-factory: document 004 食品厂客户满意度提升策略制度 (shared/seeds/004).
--
-- What it takes from the document (docs/profiles.md has the full mapping):
--   二       departments: 客户服务部 takes every inquiry, complaint and suggestion; 生产部
--            handles complaints caused by product quality; 质量管理部 investigates quality
--            problems and supervises the rectification; 研发部 takes taste and new-product
--            wishes; 销售部 helps with disputes; 行政部 leads the supervision group
--   三2      complaint intake records time, complainant, contact and matter, and the
--            deadline promised to the customer (fields["承诺期限"]) -> the `promise` clock,
--            the tag `incomplete_record` when the complainant or contact is missing;
--            the department contacts the customer and makes a plan in a set time ->
--            `contact`, `plan`; customer service answers and confirms satisfaction
--   四3      安全保障权: food safety comes first -> 食品安全 is always 重大, priority 1, and
--            the 领导小组 (chaired by the factory director) is told at once; closing needs the
--            quality department's investigation (`investigated`) and the rectification
--            (`rectified`)
--   五1      KPIs complaint rate, loyalty, repeat purchase -> `score`
local C = require("voc_common")
local K = C.keywords
local contains_any = C.contains_any

local NOTIFIER = "journal"

local CATEGORIES = C.rules {
  { category = "食品安全", department = "质量管理部", collaborators = { "生产部", "客户服务部" },
    -- Foreign bodies are named precisely: a lone 虫 would also match 虫草 (cordyceps, an
    -- ingredient), 玻璃 and 金属 the glass jar or the tin a product comes in.
    keywords = {
      "食品安全", "异物", "头发", "毛发", "虫子", "小虫", "活虫", "死虫", "飞虫", "虫卵",
      "幼虫", "米虫", "生虫", "长虫", "蛀虫", "虫蛀", "蛆", "苍蝇", "蟑螂", "碎玻璃",
      "玻璃碴", "玻璃渣", "玻璃片", "玻璃碎", "金属片", "金属丝", "金属屑", "金属碎",
      "铁丝", "钢丝球", "塑料片", "变质", "发霉", "霉变", "长毛", "霉点", "过期", "超过保质期",
      "腹泻", "拉肚子", "呕吐", "肚子疼", "腹痛", "中毒", "过敏", "送医", "去医院", "住院",
      "就医", "急诊", "酸败", "发臭", "臭味", "哈喇味", "胀袋", "胀包", "胀罐", "防腐剂",
      "添加剂超标", "细菌", "菌落", "有毒", "生产日期不对", "没有生产日期",
    } },
  { category = "产品质量", department = "生产部", collaborators = { "质量管理部" },
    keywords = {
      "质量", "品质", "包装破损", "破损", "漏了", "漏液", "漏气", "分量不足", "缺斤少两",
      "重量不足", "净含量", "压碎", "碎了", "受潮", "回软", "发硬", "不新鲜", "颜色不对",
      "标签", "密封", "封口",
    } },
  { category = "口味与新品", department = "研发部", collaborators = { "销售部" },
    keywords = {
      "口味", "口感", "味道", "太咸", "太甜", "太辣", "太淡", "太油", "偏咸", "偏甜", "新品",
      "新口味", "低糖", "无糖", "少糖", "低脂", "配方", "小包装", "大包装", "好吃", "难吃",
      "不好吃", "好喝", "难喝", "不好喝", "瓶装", "罐装", "袋装", "盒装", "包装设计",
    } },
  { category = "交付", department = "销售部", collaborators = { "生产部" },
    keywords = {
      "发货", "送货", "配送", "物流", "快递", "到货", "交货", "送达", "延误", "延迟", "还没到",
      "没收到", "缺货", "断货", "订货", "补货", "错发", "漏发", "少发", "冷链", "化冻",
    } },
  { category = "服务态度", department = "客户服务部", collaborators = { "行政部" },
    keywords = {
      "态度", "客服", "服务", "导购", "促销员", "业务员", "不耐烦", "推诿", "敷衍", "没人理",
      "挂断", "挂电话", "热情", "耐心", "礼貌",
    } },
}
local OTHER = { category = "其他", department = "客户服务部", collaborators = {} }

local NO_TAGS = {}

local function present(v)
  return type(v) == "string" and v ~= ""
end

local function classify(case)
  local text = case.normalized
  local stated = C.kind_from_fields(case)
  local kind = stated or C.text_kind(text)
  local r = C.first_rule(text, CATEGORIES) or OTHER
  local tags = NO_TAGS
  local severity, priority = "轻微", kind == "praise" and 4 or 3
  if r.category == "食品安全" then
    -- Hair in the yoghurt is a complaint even when the customer only describes it.
    if not stated and (kind == "opinion" or kind == "praise") then kind = "complaint" end
    tags = { "food_safety" }
    if kind == "complaint" then
      severity, priority = "重大", 1
    else
      severity, priority = "一般", 2
    end
  elseif kind == "complaint" then
    severity, priority = "一般", 2
    if contains_any(text, C.MAJOR) then
      severity, priority, tags = "重大", 1, { "major" }
    end
  end
  if kind == "complaint" then
    local who = case.customer or {}
    if not (present(who.name) and present(who.contact)) then
      tags = C.concat(tags, { "incomplete_record" })
    end
  end
  return { kind = kind, category = r.category, severity = severity, department = r.department,
           collaborators = r.collaborators, priority = priority, tags = tags }
end

local function by_severity(major, general, minor)
  return function(case)
    local s = case.classification.severity
    if s == "重大" then return major end
    if s == "一般" then return general end
    return minor
  end
end

local PROMISE_FIELDS = { "承诺期限", "承诺处理期限", "promised" }
local default_promise = by_severity("3d", "7d", "15d")

-- 三2: the deadline promised to the customer at intake, as a duration ("48小时", "3天",
-- "72h") or a time ("2026-11-25T18:00:00+08:00"); without one, a default by severity.
local function promise_target(case)
  local f = case.fields
  if type(f) == "table" then
    for i = 1, #PROMISE_FIELDS do
      local v = f[PROMISE_FIELDS[i]]
      local s = C.duration(v)
      if s then return s end
      local due, received = C.time(v), C.time(case.received_at)
      if due and received and due > received then return due - received end
    end
  end
  return default_promise(case)
end

local function is_food_safety(case)
  local c = case.classification
  return c.category == "食品安全" and c.kind == "complaint"
end

return {
  name = "food-factory",
  description = "食品厂客户满意度提升策略制度 (document 004): food safety first, promised "
    .. "deadlines, investigation and rectification before closing",
  version = "1",

  classify = classify,
  defaults = { kind = "opinion", category = "其他", severity = "轻微",
               department = "客户服务部", priority = 3 },

  -- investigated: 质量管理部 调查分析 done (data.root_cause); rectified: 整改落实 checked.
  events = { "investigated", "rectified" },

  clocks = {
    { name = "contact", start = "assigned", stop = "acknowledged", warn = 0.8,
      target = by_severity("2h", "24h", "48h") },
    { name = "plan", start = "assigned", stop = "planned", warn = 0.8,
      target = by_severity("24h", "48h", "5d") },
    { name = "promise", start = "received", stop = "replied", warn = 0.8,
      target = promise_target },
  },

  guard = function(case, event)
    local t = event.type
    if t == "replied" and is_food_safety(case) and not C.has_event(case, "investigated") then
      return false, "食品安全投诉须先由质量管理部门完成调查分析 (investigated)"
    end
    if t == "closed" and case.classification.kind == "complaint" then
      if is_food_safety(case) and not C.has_event(case, "rectified") then
        return false, "食品安全投诉须监督整改落实 (rectified) 后才能结案"
      end
      if not C.has_event(case, "revisited") then
        return false, "须向客户反馈处理结果并确认客户是否满意 (revisited) 后才能结案"
      end
    end
    if t == "rectified" and not C.has_event(case, "investigated") then
      return false, "整改落实前须先完成调查分析 (investigated)"
    end
    return true
  end,

  on_event = function(case, event)
    local actions = {}
    if event.type == "classified" then
      local assign = C.assign_action(case, "客户服务部转交责任部门")
      if assign then actions[#actions + 1] = assign end
      if is_food_safety(case) then
        actions[#actions + 1] = { notify = NOTIFIER,
          message = "食品安全投诉, 报客户满意度提升领导小组 (厂长): " .. C.label(case) }
      end
    elseif event.type == "revisited" and event.data and event.data.satisfaction <= 2 then
      actions[#actions + 1] = { tag = "unsatisfied" }
      actions[#actions + 1] = { notify = NOTIFIER,
        message = "客户对处理结果不满意: " .. C.label(case) }
    end
    return actions
  end,

  on_clock = function(case, clock, status)
    return C.clock_actions(case, clock, status, NOTIFIER)
  end,

  score = {
    document = "004 食品厂客户满意度提升策略制度",
    categories = { "食品安全", "产品质量", "口味与新品", "交付", "服务态度", "其他" },
    kpis = {
      { name = "complaint_rate", label = "客户投诉率", formula = "complaints / orders in the period" },
      { name = "loyalty", label = "客户忠诚度",
        formula = "customers buying again within 12 months / customers" },
      { name = "repeat_purchase_rate", label = "重复购买率",
        formula = "customers with two or more purchases / customers" },
      { name = "satisfaction", label = "客户满意度",
        formula = "share of revisits with satisfaction >= 3" },
      { name = "promise_kept", label = "承诺期限达成率", formula = "promise clocks met / stopped" },
    },
    supervision = { group = "客户满意度监督小组 (行政部牵头)", review = "regular",
                    data_monitoring = "real time" },
    rewards = { person = "客户满意度优秀员工奖", team = "团队奖金 / 优秀团队称号" },
    penalties = {
      person = "因工作失误或服务态度恶劣导致客户投诉: 批评教育、罚款、降职",
      team = "客户满意度指标明显下降: 部门整体绩效扣分, 整改报告, 限期整改",
    },
  },

  tests = {
    { case = { customer = { name = "王女士", contact = "13912345678" },
               text = "今天买的酸奶喝出一根头发, 孩子已经喝了半瓶" },
      expect = { kind = "complaint", category = "食品安全", severity = "重大", priority = 1,
                 department = "质量管理部", tags = { "food_safety" } } },
    { case = { text = "薯片包裝破損, 裡面都壓碎了, 要求退貨" },
      expect = { kind = "complaint", category = "产品质量", severity = "一般",
                 tags = { "incomplete_record" } } },
    { case = { text = "希望推出低糖口味的燕麦饼干" },
      expect = { kind = "suggestion", category = "口味与新品", department = "研发部",
                 severity = "轻微" } },
  },
}
