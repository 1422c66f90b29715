-- iatf16949-automotive: document 002 顾客服务控制程序 (IATF 16949) of an automotive parts
-- supplier (shared/seeds/002).
--
-- What it takes from the document (docs/profiles.md has the full mapping):
--   3.7/3.8   重大质量问题 = the customer's production stopped or a batch affected, else
--             一般质量问题 (delivery complaints likewise: 重大 / 一般交付问题)
--   4.2.2.1   quality complaints go to 质量部 (《顾客抱怨信息台帐》 -> `complaint_logged`),
--             delivery (交期) complaints to 生产部; 重大 -> 专案小组 with 生产部 and 技术中心,
--             management told at once
--   6.2       contact the customer and react within 2 h -> `respond`
--   6.3.1     cause and short-term countermeasure within 1 day -> `countermeasure`;
--             an 8D report, when the customer asks for one, within 72 h -> `report_8d`;
--             closed on the customer's side within 7 days -> `customer_closure`;
--             closed in the plant within a month -> `internal_closure`.
--             "若顾客有规定时依顾客规定执行": deadlines the customer states override these
--             four targets: case.fields.customer_sla, else the text ("24小时内提交8D报告")
--   4.3.3     field service at the customer done within 3 days of the request -> `field_service`
--   4.2.2.2   a complaint closes only when (a) two consecutive batches of the same product
--             came without the problem (`batch_clean` x2, `batch_defect` resets the count),
--             (b) there is a preventive action (`preventive_action`) and (c) the customer
--             approved it, if the customer asked to (`customer_approved`)
--   品质保证部 out-of-scope requests are rejected with a notice (core `rejected` + note)
--   顾客满意度 the supplier scorecard, satisfaction rates and the 40/60 composite -> `score`
local C = require("voc_common")
local K = C.keywords
local contains_any = C.contains_any

local NOTIFIER = "journal"

local CATEGORIES = C.rules {
  { category = "质量", department = "质量部", collaborators = { "销售部", "技术中心" },
    keywords = {
      "质量", "品质", "不良", "不合格", "缺陷", "超差", "毛刺", "裂纹", "开裂", "变形", "生锈",
      "锈蚀", "漆瘤", "贴错", "混料", "错装", "漏装", "断线", "异响", "泄漏", "漏油", "渗漏",
      "失效", "异物", "退货", "ppm", "8d", "召回", "三包", "索赔",
    } },
  { category = "产品交付", department = "生产部", collaborators = { "销售部" },
    keywords = {
      "交付", "交货", "交期", "发货", "送货", "到货", "延迟", "延误", "推迟", "缺货", "欠货",
      "少发", "漏发", "错发", "数量不符", "运输", "包装破损", "紧急发货", "停机待料",
    } },
  { category = "服务", department = "销售部", collaborators = { "质量部" },
    keywords = {
      "沟通", "联系不上", "不回复", "没回复", "回复慢", "响应慢", "不及时", "态度", "服务",
      "培训", "维修", "维护", "保养", "走访",
    } },
  { category = "成本", department = "销售部", collaborators = { "财务部" },
    keywords = { "价格", "报价", "降价", "涨价", "成本", "运费", "扣款", "罚款", "年降" } },
  { category = "技术咨询", department = "技术中心", collaborators = { "销售部" },
    keywords = {
      "技术参数", "参数", "规格", "图纸", "技术资料", "性能", "注意事项", "安装方法",
      "检验报告", "出厂报告", "材质证明", "使用方法",
    } },
}
local OTHER = { category = "其他", department = "销售部", collaborators = {} }

-- 重大: the customer's line stopped (生产中断) or a batch is affected (批量).
local STOP = K {
  "停线", "停产", "生产中断", "停机待料", "线停", "停工", "停止生产", "被迫停", "断点",
}
local BATCH = K {
  "批量", "整批", "多批", "大批", "全部不良", "召回", "批次不良", "多个批次", "整车",
}
local EIGHT_D = K { "8d" }
local FIELD = K {
  "现场服务", "派人", "到现场", "来现场", "上门", "现场确认", "现场处理", "现场支持",
  "现场指导",
}
local APPROVAL = K {
  "经我方确认", "经我司确认", "我方认可", "我司认可", "需我方批准", "经我方批准", "我方同意后",
}
-- 专案小组 (b): sales, engineering and production join quality on a major problem.
local PROJECT_TEAM = { "销售部", "技术中心", "生产部" }

local PRIORITY = { praise = 4, opinion = 3, inquiry = 3, suggestion = 3 }

local function classify(case)
  local text = case.normalized
  local kind = C.kind(case, text)
  local rule = C.first_rule(text, CATEGORIES) or OTHER
  local category, collaborators = rule.category, rule.collaborators
  local severity, priority = "一般", PRIORITY[kind] or 3
  local tags = {}
  if kind == "complaint" then
    priority = 2
    local stop = contains_any(text, STOP)
    if category == "质量" then
      if stop or contains_any(text, BATCH) then
        severity, priority, collaborators = "重大质量问题", 1, PROJECT_TEAM
      else
        severity = "一般质量问题"
      end
      tags[#tags + 1] = stop and "scorecard:quality_production_stop"
        or "scorecard:quality_complaint"
    elseif category == "产品交付" then
      if stop then
        severity, priority = "重大交付问题", 1
      else
        severity = "一般交付问题"
      end
      tags[#tags + 1] = stop and "scorecard:late_delivery_production_stop"
        or "scorecard:late_delivery_complaint"
    elseif category == "服务" then
      tags[#tags + 1] = "scorecard:poor_communication"
    end
    if stop then tags[#tags + 1] = "production_stop" end
  end
  if contains_any(text, EIGHT_D) then tags[#tags + 1] = "8d" end
  if contains_any(text, FIELD) then tags[#tags + 1] = "field_service" end
  if contains_any(text, APPROVAL) then tags[#tags + 1] = "approval_required" end
  return { kind = kind, category = category, severity = severity,
           department = rule.department, collaborators = collaborators,
           priority = priority, tags = tags }
end

-- 6.2 / 6.3.1 "若顾客有规定时依顾客规定执行": what the customer states beats the default.
-- Deadlines written in the complaint ("24小时内提交8D报告", "請於兩個工作日內回覆原因分析",
-- "3天内回复") are matched to the clock their clause names; the bare 回复 of 6.3.1 (回复不良
-- 产生原因和短期对策) is the countermeasure, 联系 / 响应 / 回复邮件 (6.2) the first response.
local STATED = {
  { clock = "report_8d", words = { "8d" } },
  { clock = "customer_closure", words = { "结案", "关闭", "闭环" } },
  { clock = "countermeasure",
    words = { "原因", "对策", "处理方案", "处理意见", "措施", "分析", "围堵" } },
  { clock = "respond",
    words = { "联系", "联络", "响应", "回电", "回邮件", "回复邮件", "答复邮件", "确认收到" } },
  { clock = "countermeasure", words = { "回复", "答复", "反馈" }, fallback = true },
}

-- case.fields.customer_sla = { respond = "1h", countermeasure = "12h", report_8d = "48h",
-- customer_closure = "5d" } (entered from the customer's requirements manual) comes first,
-- then a deadline stated in the text, then the document's default.
-- The deadlines stated in the last text read: several clocks start in one commit and each
-- asks, so the text is read once per case, not once per clock.
local stated_text, stated
local function stated_in(text)
  if text ~= stated_text then stated_text, stated = text, C.stated_targets(text, STATED) end
  return stated
end

local function customer_or(name, default)
  return function(case)
    local sla = case.fields and case.fields.customer_sla
    local entered = type(sla) == "table" and C.duration(sla[name])
    if entered then return entered end
    return stated_in(case.normalized)[name] or default
  end
end

local function has_tag(case, tag)
  local tags = case.classification and case.classification.tags or {}
  for i = 1, #tags do
    if tags[i] == tag then return true end
  end
  return false
end

-- (c) applies when the customer asked for it: at intake (fields.approval_required, or the
-- text asks for its confirmation) or later (`approval_requested`).
local function approval_required(case)
  return (case.fields and case.fields.approval_required == true)
    or has_tag(case, "approval_required") or C.has_event(case, "approval_requested")
end

-- (a): batches of the same product delivered since the last recurrence.
local function clean_batches(case)
  local n = 0
  local events = case.events or {}
  for i = 1, #events do
    local t = events[i].type
    if t == "batch_clean" then
      n = n + 1
    elseif t == "batch_defect" then
      n = 0
    end
  end
  return n
end

local BATCH_CATEGORIES = { ["质量"] = true, ["产品交付"] = true }

local function closure_gaps(case)
  local c = case.classification
  local gaps = {}
  if c.kind ~= "complaint" then return gaps end
  if BATCH_CATEGORIES[c.category] then
    local n = clean_batches(case)
    if n < 2 then
      gaps[#gaps + 1] = string.format("连续两批同类产品没有再出现类似问题 (batch_clean: %d/2)", n)
    end
  end
  if not C.has_event(case, "preventive_action") then
    gaps[#gaps + 1] = "具有防止再发生的措施 (preventive_action)"
  end
  if approval_required(case) and not C.has_event(case, "customer_approved") then
    gaps[#gaps + 1] = "顾客要求认可, 须获得顾客认可 (customer_approved)"
  end
  return gaps
end

local MAJOR = { ["重大质量问题"] = true, ["重大交付问题"] = true }

local function once(case, actions, type_, note)
  if not C.has_event(case, type_) then
    actions[#actions + 1] = { event = type_, note = note }
  end
end

return {
  name = "iatf16949-automotive",
  description = "顾客服务控制程序 IATF 16949 (document 002): 2 h / 1 d / 72 h 8D / 7 d / 1 month, "
    .. "closure after two clean batches, preventive action and customer approval, scorecard",
  version = "1",

  classify = classify,
  defaults = { kind = "opinion", category = "其他", severity = "一般", department = "销售部",
               priority = 3 },

  events = {
    "complaint_logged", -- 登记于《顾客抱怨信息台帐》: starts the complaint deadlines
    "containment", -- 追溯在库品 / 在制品, 应急处理
    "countermeasure", -- 回复不良产生原因和短期对策
    "8d_requested", "8d_submitted",
    "customer_closed", -- 客户端不良处理结案
    "field_service_requested", "field_service_done",
    "batch_clean", "batch_defect", -- a later batch of the same product, without / with it
    "preventive_action", -- 防止再发生的措施
    "approval_requested", "customer_approved",
  },

  clocks = {
    { name = "respond", start = "received", stop = "acknowledged", warn = 0.8,
      target = customer_or("respond", "2h") },
    { name = "countermeasure", start = "complaint_logged", stop = "countermeasure", warn = 0.8,
      target = customer_or("countermeasure", "1d") },
    { name = "report_8d", start = "8d_requested", stop = "8d_submitted", warn = 0.8,
      target = customer_or("report_8d", "72h") },
    { name = "customer_closure", start = "complaint_logged", stop = "customer_closed",
      warn = 0.8, target = customer_or("customer_closure", "7d") },
    { name = "internal_closure", start = "complaint_logged", stop = "closed", target = "30d",
      warn = 0.8 },
    { name = "field_service", start = "field_service_requested", stop = "field_service_done",
      target = "3d", warn = 0.8 },
  },

  guard = function(case, event)
    local t = event.type
    if t == "closed" then
      local gaps = closure_gaps(case)
      if #gaps > 0 then
        return false, "顾客抱怨结案条件未满足: " .. table.concat(gaps, "; ")
      end
    elseif t == "countermeasure" and case.classification.severity == "重大质量问题"
        and not C.has_event(case, "containment") then
      return false, "重大质量问题须先追溯在库品和在制品, 完成应急处理 (containment)"
    elseif t == "customer_closed" and not C.has_event(case, "countermeasure") then
      return false, "须先向顾客回复不良原因和短期对策 (countermeasure)"
    elseif t == "field_service_done" and not C.has_event(case, "field_service_requested") then
      return false, "没有现场服务请求 (field_service_requested)"
    end
    return true
  end,

  on_event = function(case, event)
    local actions = {}
    local c = case.classification
    if event.type == "classified" then
      local assign = C.assign_action(case, "销售部接收登记, 传递责任部门")
      if assign then actions[#actions + 1] = assign end
      if c.kind == "complaint" then
        once(case, actions, "complaint_logged", "登记于《顾客抱怨信息台帐》")
      end
      if has_tag(case, "8d") then once(case, actions, "8d_requested", "顾客要求8D报告") end
      if has_tag(case, "field_service") then
        once(case, actions, "field_service_requested", "顾客要求派人现场服务")
      end
      if MAJOR[c.severity] then
        actions[#actions + 1] = { notify = NOTIFIER,
          message = c.severity .. ": 紧急磋商应急处理方案, 成立专案小组 — " .. C.label(case) }
      end
    elseif event.type == "batch_defect" then
      actions[#actions + 1] = { tag = "recurrence" }
      actions[#actions + 1] = { notify = NOTIFIER,
        message = "同类问题在后续批次再次出现: " .. C.label(case) }
    end
    return actions
  end,

  on_clock = function(case, clock, status)
    return C.clock_actions(case, clock, status, NOTIFIER)
  end,

  score = {
    document = "002 顾客服务控制程序 (IATF 16949), 顾客满意度测量 / 外部顾客满意度评价细则",
    severities = { "重大质量问题", "一般质量问题", "重大交付问题", "一般交付问题", "一般" },
    satisfaction = {
      -- 5.2.3.2 / 5.2.3.3: (满意 + 很满意) / items answered x 100 %, per item and over all
      single_item_rate = "(satisfied + very_satisfied) / answered * 100",
      composite_rate = "(satisfied + very_satisfied) over all items / all items * 100",
      threshold = 80, -- below: 销售部 proposes improvement directions
      survey = { frequency = "yearly", month = 12, return_rate_min = 80 },
      report_within = "2w", -- 《年度顾客抱怨和趋势分析统计表》
    },
    -- 顾客综合满意度 = A x 40 % + B x 60 %; A = survey score, B = delivery score
    -- (100 - deductions + bonuses, from the internal scorecard).
    composite = { survey_weight = 0.4, delivery_weight = 0.6, delivery_base = 100 },
    -- 备注: 同一事件不重复扣分, 以最严厉条款为准 / 同一事件不重复奖励, 以最高奖励分数为准.
    deduction_rule = "most_severe_line",
    bonus_rule = "highest_line",
    -- Deductions: first occurrence / repeat (nil where the document gives none).
    deductions = {
      { key = "late_delivery_complaint", area = "产品交付",
        item = "未按规定时间交付产品, 引起顾客抱怨", first = 5, ["repeat"] = 10 },
      { key = "late_delivery_production_stop", area = "产品交付",
        item = "未准时交付产品, 引起顾客生产中断", first = 10, ["repeat"] = 20 },
      { key = "price_above_average", area = "成本", item = "价格高于平均水平", first = 5 },
      { key = "incoming_inspection_defect", area = "质量/进货检验",
        item = "进货检验不良 (包括碰伤/包装或性能不良)", first = 2 },
      { key = "document_error", area = "质量/进货检验", item = "报告单或其它单据有误或遗漏",
        first = 5, ["repeat"] = 10 },
      { key = "wire_break_worst", area = "质量/制程不良", item = "顾客评价使用过程断线率最高",
        first = 10, ["repeat"] = 20 },
      { key = "wire_break_high", area = "质量/制程不良",
        item = "顾客评价使用过程断线率偏高但非最差", first = 5, ["repeat"] = 10 },
      { key = "paint_or_label", area = "质量/制程不良",
        item = "使用过程发现连续性漆瘤/标签贴错", first = 5, ["repeat"] = 10 },
      { key = "other_performance", area = "质量/制程不良",
        item = "使用过程发现其它性能不合格导致客诉", first = 5, ["repeat"] = 10 },
      { key = "batch_return", area = "质量/不良退货",
        item = "因质量问题发生批量退货 > 1 吨/次, 或当月退货率 >= 2000 ppm", first = 10,
        ["repeat"] = 20 },
      { key = "quality_complaint", area = "质量/投诉", item = "因质量问题导致顾客投诉",
        first = 5, ["repeat"] = 10 },
      { key = "quality_production_stop", area = "质量/生产中断",
        item = "因质量问题导致顾客生产中断", first = 10, ["repeat"] = 20 },
      { key = "supply_stopped_all", area = "质量/停止供货",
        item = "因质量问题导致顾客全面停止供货", first = 100 },
      { key = "supply_stopped_partial", area = "质量/停止供货",
        item = "因质量问题导致顾客部分产品停止供货", first = 50, ["repeat"] = 100 },
      { key = "poor_communication", area = "服务", item = "顾客抱怨信息交流不畅", first = 5,
        ["repeat"] = 10 },
      { key = "complaint_not_in_time", area = "服务",
        item = "顾客抱怨未及时处理 (包括报告回复慢)", first = 5, ["repeat"] = 10 },
      { key = "user_quality_complaints", area = "其它/质量口碑",
        item = "顾客使用人员抱怨质量问题多", first = 10, ["repeat"] = 20 },
      { key = "share_down_quality", area = "其它/市场份额",
        item = "因质量问题导致供货比例下降 >= 10 %", first = 20, ["repeat"] = 50 },
      { key = "share_down_monthly", area = "其它/市场份额",
        item = "采购比例逐月下降 (顾客自身原因除外)", first = 10, ["repeat"] = 20 },
    },
    bonuses = {
      { key = "emergency_delivery", area = "产品交付", item = "配合顾客紧急发货 (非常规发货时间)",
        points = 5 },
      { key = "price_below_average", area = "成本", item = "价格低于平均水平", points = 5 },
      { key = "incoming_clean_3m", area = "质量/进货检验", item = "进货检验连续3个月无不良反馈",
        points = 2 },
      { key = "process_clean_2m", area = "质量/制程不良", item = "使用过程连续2个月无不良反馈",
        points = 3 },
      { key = "no_returns_1m", area = "质量/不良退货", item = "连续1个月内无质量退货", points = 3 },
      { key = "returns_500ppm", area = "质量/不良退货", item = "退货率 <= 500 ppm", points = 2 },
      { key = "no_complaint_2m", area = "质量/投诉", item = "连续2个月无任何投诉", points = 5 },
      { key = "proactive_visit", area = "服务", item = "主动了解顾客需求, 非质量问题走访顾客",
        points = 3 },
      { key = "customer_award", area = "其它/质量口碑", item = "顾客嘉奖 (如优秀供应商)",
        points = 5 },
      { key = "user_praise", area = "其它/质量口碑", item = "产品质量得到顾客使用人员认可、夸奖",
        points = 2 },
      { key = "competitor_praise", area = "其它/质量口碑", item = "产品质量得到2家以上竞争对手夸奖",
        points = 2 },
      { key = "share_over_50", area = "其它/市场份额", item = "占顾客总采购量50%以上", points = 5 },
      { key = "share_over_30", area = "其它/市场份额", item = "占顾客总采购量30%以上", points = 2 },
      { key = "sole_supplier", area = "其它/市场份额", item = "独家供货", points = 8 },
    },
    -- Which line a case counts under: the `scorecard:<key>` tag set by classify; a breached
    -- respond / countermeasure / report_8d / customer_closure clock adds complaint_not_in_time.
    late_clocks = { "respond", "countermeasure", "report_8d", "customer_closure" },
  },

  tests = {
    { case = { subject = "客诉: 支架尺寸超差",
               text = "贵司6月12日送货的支架来料检验尺寸超差, 不良率3%, 请24小时内回复8D报告" },
      expect = { kind = "complaint", category = "质量", severity = "一般质量问题",
                 department = "质量部", priority = 2,
                 tags = { "scorecard:quality_complaint", "8d" } } },
    { case = { text = "貴司線束批量斷線, 導致我司總裝線停線兩小時, 請立即派人到現場處理" },
      expect = { severity = "重大质量问题", priority = 1,
                 collaborators = { "销售部", "技术中心", "生产部" },
                 tags = { "scorecard:quality_production_stop", "production_stop",
                          "field_service" } } },
    { case = { text = "本周的交货推迟了两天, 我们的生产计划被打乱, 请说明原因" },
      expect = { kind = "complaint", category = "产品交付", severity = "一般交付问题",
                 department = "生产部" } },
    { case = { text = "请提供XK-200型号的技术参数和出厂检验报告" },
      expect = { kind = "inquiry", category = "技术咨询", department = "技术中心", priority = 3 } },
  },
}
