-- voc-general: the general VOC process of document 000 企业VOC管理制度 (shared/seeds/000).
--
-- What it takes from the document (docs/profiles.md has the full mapping):
--   三(三)2  categories 产品质量 / 服务态度 / 交付及时性 / 产品功能 (+ 其他 for the rest)
--   五(二)1  routing: quality -> 研发部 + 生产部, service attitude -> 客服部 + 销售部;
--            二(六) 质量管理部 follows every quality problem; 二(二) 销售部 owns delivery
--            feedback; 二(四)/六(二)1 研发部 turns function requests into requirements
--   三(二)4  major matters and complaints: collection starts within [x] hours, progress is
--            reported -> the `respond` clock, and 重大 cases go to 高层管理团队 at once
--   四(一)1  客服部 sorts the day's feedback after work -> the `transfer` clock (one working
--            day on the `workdays` calendar); duplicates are linked with the core `duplicate`
--            event (剔除重复信息), never deleted
--   五(二)2-3 the responsible department answers with a measure plan -> the `plan` clock
--   七(三)1  short-term improvements are evaluated within [x] weeks -> `improvement`,
--            `effect_evaluated` and the `effect` clock; a case with an improvement closes
--            only after its effect was evaluated
--   四/七/八 weekly summary and meeting, monthly deep report, KPIs, monthly (person) and
--            quarterly (department) assessment -> `score`
-- The document leaves its numbers open ([x]); the targets below are this profile's choice.
local C = require("voc_common")
local K = C.keywords
local contains_any = C.contains_any

local NOTIFIER = "journal" -- a notifier from the config's `notifiers`

-- Categories in priority order: a text that names a quality defect and a late delivery is
-- a quality case.
local CATEGORIES = C.rules {
  { category = "产品质量", department = "研发部", collaborators = { "生产部", "质量管理部" },
    keywords = {
      "质量", "品质", "坏了", "损坏", "故障", "失灵", "漏水", "漏电", "漏气", "异响", "噪音",
      "破损", "开裂", "裂纹", "生锈", "脱落", "掉漆", "变形", "褪色", "做工", "瑕疵", "次品",
      "不合格", "缺陷", "冒烟", "起火", "烧坏", "过热", "异味", "异物", "无法加热", "不能加热",
      "不制冷", "不出水", "开不了机", "无法启动", "死机", "当机", "返修", "又坏",
    } },
  { category = "产品功能", department = "研发部", collaborators = { "市场部" },
    keywords = {
      "功能", "操作", "设置", "界面", "介面", "app", "软件", "软体", "固件", "升级", "蓝牙",
      "wifi", "兼容", "不准", "定时", "模式", "续航", "导出", "同步", "闪退", "卡顿", "识别",
      "语音", "遥控", "说明书",
    } },
  { category = "交付及时性", department = "销售部", collaborators = { "生产部" },
    keywords = {
      "发货", "送货", "配送", "物流", "快递", "到货", "交货", "交付", "送达", "延误", "延迟",
      "迟迟", "还没到", "没收到", "催单", "上门安装", "没有上门", "改约", "错发", "漏发",
      "少发", "发错", "缺货", "工期",
    } },
  { category = "服务态度", department = "客服部", collaborators = { "销售部" },
    keywords = {
      "态度", "不耐烦", "爱答不理", "没人理", "没人管", "推诿", "敷衍", "踢皮球", "挂断",
      "挂电话", "客服", "服务", "售后", "业务员", "销售员", "接线员", "热情", "耐心", "礼貌",
      "骂人", "辱骂", "不回复", "没回复", "专业",
    } },
}

local OTHER = { category = "其他", department = "客服部", collaborators = {} }

-- 三(二)4 重大: safety, many customers, the public or the law involved (voc_common).
local MAJOR, SAFETY = C.MAJOR, C.SAFETY

local PRIORITY = { praise = 4, opinion = 3, inquiry = 3, suggestion = 3 }

local DEFAULTS = { kind = "opinion", category = "其他", severity = "轻微", department = "客服部",
                   collaborators = {}, priority = 3, tags = {} }

local NO_TAGS = {}
local MAJOR_TAGS = { "major" }
local SAFETY_TAGS = { "major", "safety" }

local function classify(case)
  local text = case.normalized
  local kind = C.kind(case, text)
  local rule = C.first_rule(text, CATEGORIES) or OTHER
  local severity, priority, tags = "轻微", PRIORITY[kind] or 3, NO_TAGS
  if kind == "complaint" then
    severity, priority = "一般", 2
    if contains_any(text, MAJOR) then
      severity, priority = "重大", 1
      tags = contains_any(text, SAFETY) and SAFETY_TAGS or MAJOR_TAGS
    end
  end
  return { kind = kind, category = rule.category, severity = severity,
           department = rule.department, collaborators = rule.collaborators,
           priority = priority, tags = tags }
end

local IMPROVEMENT = { improvement = true }

return {
  name = "voc-general",
  description = "企业VOC管理制度 (document 000): four categories, routing to the departments "
    .. "named by the document, measure plans and effect tracking",
  version = "1",

  classify = classify,
  defaults = DEFAULTS,

  -- improvement: 改进措施已实施 (data: measure, owner); effect_evaluated: 效果评估 done
  -- (data: effective = true | false, indicator, value).
  events = { "improvement", "effect_evaluated" },

  clocks = {
    -- 四(一)1: sorted and passed on by the end of the working day it came in.
    { name = "transfer", start = "received", stop = "assigned", target = "9h",
      calendar = "workdays", warn = 0.8 },
    -- 三(二)4: the department starts on it within hours; major matters first.
    { name = "respond", start = "assigned", stop = "acknowledged", warn = 0.8,
      target = function(case)
        local c = case.classification
        if c.severity == "重大" then return "2h" end
        return c.kind == "complaint" and "8h" or "24h"
      end },
    -- 五(二)2-3: the measure plan goes back to the VOC group by the date set on transfer.
    { name = "plan", start = "assigned", stop = "planned", calendar = "workdays", warn = 0.8,
      target = function(case)
        local p = case.classification.priority
        if p == 1 then return "9h" end -- one working day
        if p == 2 then return "18h" end -- two
        return "45h" -- five
      end },
    -- 七(三)1: a short-term improvement is evaluated within two weeks of being put in place.
    { name = "effect", start = "improvement", stop = "effect_evaluated", target = "2w",
      warn = 0.8 },
  },

  guard = function(case, event)
    if event.type == "effect_evaluated" and not C.has_event(case, "improvement") then
      return false, "效果评估需先登记改进措施 (improvement)"
    end
    if event.type == "closed" then
      local _, at = C.last_event(case, "improvement")
      if at and not C.has_event_after(case, "effect_evaluated", at) then
        return false, "改进措施的效果评估 (effect_evaluated) 完成后才能结案"
      end
    end
    return true
  end,

  on_event = function(case, event)
    local actions = {}
    if event.type == "classified" then
      local assign = C.assign_action(case, "按问题性质自动传递责任部门")
      if assign then actions[#actions + 1] = assign end
      if case.classification.severity == "重大" then
        actions[#actions + 1] = { notify = NOTIFIER,
          message = "重大VOC, 请高层管理团队关注并协调: " .. C.label(case) }
      end
    elseif event.type == "effect_evaluated" and event.data and event.data.effective == false then
      actions[#actions + 1] = { tag = "improvement_ineffective" }
      actions[#actions + 1] = { notify = NOTIFIER,
        message = "改进措施效果未达标, 需重新制定措施: " .. C.label(case) }
    end
    return actions
  end,

  on_clock = function(case, clock, status)
    return C.clock_actions(case, clock, status, NOTIFIER)
  end,

  score = {
    document = "000 企业VOC管理制度",
    categories = { "产品质量", "服务态度", "交付及时性", "产品功能", "其他" },
    severities = { "重大", "一般", "轻微" },
    routing = {
      ["产品质量"] = { "研发部", "生产部", "质量管理部" },
      ["产品功能"] = { "研发部", "市场部" },
      ["交付及时性"] = { "销售部", "生产部" },
      ["服务态度"] = { "客服部", "销售部" },
      ["其他"] = { "客服部" },
    },
    cadence = {
      collection = "daily", -- 三(二)1, 四(一)1
      summary = "weekly", -- 四(一)2 汇总至VOC管理小组
      analysis_meeting = "weekly", -- 四(三)1
      deep_report = "monthly", -- 四(四)1, to 高层管理团队
      department_assessment = "quarterly", -- 八(三)1
      person_assessment = "monthly", -- 八(三)2
      customer_survey = "monthly", -- 三(二)3 问卷调查每月一次
      focus_group = "quarterly", -- 三(二)3 座谈会或焦点小组每季度至少一次
    },
    effect_review = { short_term = "2w", mid_term = "3 months", long_term = "yearly" },
    kpis = {
      { name = "complaint_resolution_rate", label = "客户投诉解决率", owner = "客服部",
        formula = "resolved complaints / complaints" },
      { name = "satisfaction_score", label = "客户满意度得分", owner = "客服部",
        formula = "mean revisit satisfaction (1..5)" },
      { name = "feedback_collected", label = "客户反馈收集数量", owner = "销售部",
        formula = "cases received per channel" },
      { name = "improvement_effect", label = "产品改进方案实施效果", owner = "研发部",
        formula = "effect_evaluated with effective = true / effect_evaluated" },
      { name = "complaint_rate_trend", label = "客户投诉率下降率",
        formula = "(complaints last period - this period) / complaints last period" },
      { name = "handling_timeliness", label = "处理及时率",
        formula = "clocks met / clocks stopped" },
    },
  },

  tests = {
    { case = { subject = "电饭煲质量问题", text = "用了三天就坏了, 要求退货" },
      expect = { kind = "complaint", category = "产品质量", severity = "一般",
                 department = "研发部", collaborators = { "生产部", "质量管理部" },
                 priority = 2 } },
    { case = { text = "客服態度惡劣, 說話很不耐煩, 我要投訴" },
      expect = { kind = "complaint", category = "服务态度", department = "客服部",
                 collaborators = { "销售部" } } },
    { case = { text = "熱水壺底座冒煙, 有安全隱患" },
      expect = { severity = "重大", priority = 1, tags = { "major", "safety" } } },
    { case = { text = "建议增加定时功能" },
      expect = { kind = "suggestion", category = "产品功能", severity = "轻微" } },
    { case = { text = "非常感谢上门的师傅, 手脚麻利" },
      expect = { kind = "praise", category = "其他", priority = 4 } },
  },
}
