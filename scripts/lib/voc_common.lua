-- Shared pieces of the shipped profiles (scripts/profiles/*.lua): what kind of feedback a text
-- is, keyword rules in priority order, looking through a case's history, deadlines written
-- the way Chinese customers and staff write them, and the actions every profile takes.
--
-- Keyword lists are written in Simplified Chinese: voc.contains_any compares after
-- voc.normalize (NFKC, case folding, Traditional -> Simplified), so 質量/质量 and ＡＢＣ/abc
-- match alike. OpenCC converts characters, not vocabulary: Taiwanese words are listed in
-- their own (converted) form next to the mainland ones (品质 next to 质量, 当机 next to 死机).
-- Sets are compiled once here, at load: a hook then costs one pass over the text per set.
local M = {}

local K = voc.keywords
M.keywords = K
-- Hooks run for every case: library functions are looked up once, here.
local contains_any, normalize = voc.contains_any, voc.normalize
M.contains_any = contains_any

-- ---- kinds ------------------------------------------------------------------------------

-- Dissatisfaction said outright. Checked first: "请尽快处理, 谢谢" is still a complaint.
local DISSATISFIED_LIST = {
  "投诉", "客诉", "抱怨", "不满", "太差", "很差", "真差", "差劲", "差评", "垃圾", "恶劣",
  "坑人", "骗人", "欺骗", "退货", "退款", "退钱", "赔偿", "索赔", "维权", "12315", "消协",
  "曝光", "失望", "气愤", "态度差", "态度恶劣", "态度不好", "不耐烦", "爱答不理", "没人理",
  "没人管", "推诿", "敷衍", "踢皮球", "挂断", "挂电话", "不专业", "没耐心", "不热情",
  "乱收费", "多收", "缺斤少两", "爽约", "放鸽子", "催了",
}

-- A problem described: a complaint, unless the customer is asking about it ("请问过期一天
-- 还能吃吗" is a question).
local PROBLEM_LIST = {
  "坏了", "损坏", "故障", "失灵", "死机", "当机", "闪退", "卡死", "无法使用", "不能用",
  "用不了", "没法用", "无法启动", "开不了机", "漏水", "漏电", "漏气", "异响", "噪音大",
  "破损", "开裂", "生锈", "脱落", "掉漆", "异物", "变质", "发霉", "霉变", "过期", "腹泻",
  "拉肚子", "呕吐", "中毒", "冒烟", "起火", "着火", "烫伤", "受伤", "不合格", "不良",
  "缺陷", "停线", "停产", "断线", "延误", "迟迟", "还没到", "还没收到", "没收到", "至今未",
  "错发", "漏发", "少发", "发错", "分量不足", "推迟", "延期", "打乱", "不及时", "没有及时",
  "不好用", "不好吃", "难吃", "难用", "不准", "出错", "报错", "崩溃", "无法连接", "连不上",
  "打不开", "不兼容", "没有上门", "没上门", "改约", "无法加热", "不能加热", "不加热",
  "不制冷", "不出水", "不工作", "没反应", "失效", "坏掉", "又坏", "返修", "要求换", "要求更换",
  "换新机", "换一台",
}

-- Opening words of a question: they win over a described problem.
local ASKING_LIST = { "请问", "想问", "问一下", "咨询", "想了解", "了解一下" }

local SUGGESTION_LIST = {
  "建议", "提议", "希望增加", "希望能增加", "希望能有", "希望推出", "希望出", "希望开发",
  "希望改进", "希望优化", "能否增加", "能不能增加", "可否增加", "可不可以增加", "最好能",
  "如果能", "要是能", "期待推出", "改进一下", "优化一下", "增加一个", "加个", "新增",
  "提个意见", "提点意见", "合理化",
}

local PRAISE_LIST = {
  "表扬", "感谢", "谢谢你们", "点赞", "好评", "五星", "满意", "给力", "赞", "专业", "耐心",
  "热情", "贴心", "锦旗", "优秀", "值得信赖", "好吃", "好用", "很棒", "太棒",
}

local INQUIRY_LIST = {
  "咨询", "请问", "问一下", "想问", "想了解", "了解一下", "怎么", "如何", "怎样", "哪里",
  "什么时候", "多久", "多少钱", "是否", "能否", "能不能", "可以吗", "请提供", "吗?", "?",
}


-- What a channel's own ticket type says (hotline exports, web forms): it beats the text.
local FIELD_KINDS = {
  ["投诉"] = "complaint", ["抱怨"] = "complaint", ["客诉"] = "complaint",
  ["complaint"] = "complaint",
  ["建议"] = "suggestion", ["意见建议"] = "suggestion", ["suggestion"] = "suggestion",
  ["表扬"] = "praise", ["感谢"] = "praise", ["praise"] = "praise",
  ["咨询"] = "inquiry", ["询问"] = "inquiry", ["inquiry"] = "inquiry",
  ["意见"] = "opinion", ["其他"] = "opinion", ["opinion"] = "opinion",
}
local KIND_FIELDS = { "工单类型", "反馈类型", "类型", "type", "kind" }

-- The kind a channel stated in case.fields, or nil.
function M.kind_from_fields(case)
  local fields = case.fields
  if type(fields) ~= "table" or next(fields) == nil then return nil end
  for i = 1, #KIND_FIELDS do
    local v = fields[KIND_FIELDS[i]]
    if type(v) == "string" and v ~= "" then
      local kind = FIELD_KINDS[normalize(v)]
      if kind then return kind end
    end
  end
  return nil
end

-- ---- ranked keyword groups (category rules) ----------------------------------------------

-- Compile rules (a list of tables with a `keywords` list, highest rank first) for
-- M.first_rule: for each rank i one set of the keywords of groups 1..i, each keyword belonging
-- to the highest group that lists it. A pass over the text with the set of all groups finds
-- some group present; a pass with the set of the groups above it either finds nothing (the
-- answer) or a higher group, and so on. The answer is the one testing group after group
-- gives, in fewer passes: one when nothing matches or the first group does, usually two.
-- A pass costs about a nanosecond and a half per byte of text whatever the set's size.
function M.rules(groups)
  local words, rank_of, prefix = {}, {}, {}
  for i = 1, #groups do
    local g = groups[i]
    g.rank = i
    for _, word in ipairs(g.keywords) do
      if not rank_of[word] then
        rank_of[word] = i
        words[#words + 1] = word
      end
    end
    prefix[i] = K(words)
  end
  return { groups = groups, prefix = prefix, rank_of = rank_of }
end

-- The highest-ranked rule with a keyword in text, and that keyword; nil when none.
function M.first_rule(text, ranked)
  local prefix, rank_of = ranked.prefix, ranked.rank_of
  local hit = contains_any(text, prefix[#prefix])
  if not hit then return nil end
  local best = rank_of[hit]
  while best > 1 do
    local higher = contains_any(text, prefix[best - 1])
    if not higher then break end
    hit, best = higher, rank_of[higher]
  end
  return ranked.groups[best], hit
end

-- Kinds read from the text, in the order they win (see M.kind).
local KINDS = M.rules {
  { kind = "complaint", keywords = DISSATISFIED_LIST },
  { kind = "inquiry", keywords = ASKING_LIST },
  { kind = "complaint", keywords = PROBLEM_LIST },
  { kind = "suggestion", keywords = SUGGESTION_LIST },
  { kind = "praise", keywords = PRAISE_LIST },
  { kind = "inquiry", keywords = INQUIRY_LIST },
}

-- complaint | suggestion | praise | inquiry | opinion, from the channel's ticket type or the
-- text (case.normalized): outright dissatisfaction first, then a question about something,
-- a described problem, a suggestion, praise, any other question.
function M.kind(case, text)
  return M.kind_from_fields(case) or M.text_kind(text)
end

-- The kind the text alone says (what M.kind falls back on).
function M.text_kind(text)
  local g = M.first_rule(text, KINDS)
  return g and g.kind or "opinion"
end

-- ---- impact ----------------------------------------------------------------------------

-- A matter of wide impact: safety, many customers, the public or the law involved. The
-- documents call it 重大 / 影响较大 / 严重 and want management told at once.
M.MAJOR = K {
  "安全隐患", "冒烟", "起火", "着火", "爆炸", "漏电", "触电", "烫伤", "受伤", "批量", "大批",
  "多位客户", "多名客户", "多个客户", "集体", "媒体", "曝光", "记者", "12315", "消协", "起诉",
  "律师", "召回", "重大项目",
}
-- The safety part of it.
M.SAFETY = K { "安全隐患", "冒烟", "起火", "着火", "爆炸", "漏电", "触电", "烫伤", "受伤" }


-- ---- history ----------------------------------------------------------------------------

-- The last event of `type` (and its position), or nil.
function M.last_event(case, type_)
  local events = case.events or {}
  for i = #events, 1, -1 do
    if events[i].type == type_ then return events[i], i end
  end
  return nil
end

function M.has_event(case, type_)
  return M.last_event(case, type_) ~= nil
end

-- Position of the last event of any of the types in `set` ({type = true}), 0 when none.
function M.last_index_of(case, set)
  local events = case.events or {}
  for i = #events, 1, -1 do
    if set[events[i].type] then return i end
  end
  return 0
end

-- Is there an event of `type` after position `after`?
function M.has_event_after(case, type_, after)
  local events = case.events or {}
  for i = after + 1, #events do
    if events[i].type == type_ then return true end
  end
  return false
end

-- ---- time -------------------------------------------------------------------------------

-- Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = (y >= 0 and y or y - 399) // 400
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = (153 * mp + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  return era * 146097 + doe - 719468
end

-- Seconds since the epoch of an RFC 3339 time ("2026-11-23T01:15:00.123Z",
-- "2026-11-25 18:00:00+08:00"), or nil when the text is not one.
function M.time(text)
  if type(text) ~= "string" then return nil end
  local y, mo, d, h, mi, s, frac, zone =
    text:match("^(%d%d%d%d)-(%d%d)-(%d%d)[Tt ](%d%d):(%d%d):(%d%d)(%.?%d*)(.*)$")
  if not y then return nil end
  local t = days_from_civil(tonumber(y), tonumber(mo), tonumber(d)) * 86400
    + tonumber(h) * 3600 + tonumber(mi) * 60 + tonumber(s)
  if #frac > 1 then t = t + tonumber("0" .. frac) end
  if zone == "Z" or zone == "z" then return t end
  local sign, zh, zm = zone:match("^([+-])(%d%d):?(%d%d)$")
  if not sign then return nil end
  local offset = tonumber(zh) * 3600 + tonumber(zm) * 60
  return sign == "+" and t - offset or t + offset
end

local CN_UNITS = {
  { "分钟", 60 }, { "小时", 3600 }, { "个工作日", 86400 }, { "工作日", 86400 },
  { "天", 86400 }, { "日", 86400 }, { "周", 604800 }, { "星期", 604800 }, { "个月", 2592000 },
  { "月", 2592000 },
}

-- Seconds of a deadline as staff type it: "48h", "1h30m", 3600, "48小时", "3天", "2周",
-- "1个月". nil when the text is none of these.
function M.duration(v)
  if type(v) == "number" then return v > 0 and v or nil end
  if type(v) ~= "string" then return nil end
  local ok, s = pcall(voc.duration, v)
  if ok and s > 0 then return s end
  local n, unit = normalize(v):match("^%s*(%d+)%s*(%S+)%s*$")
  if not n then return nil end
  for i = 1, #CN_UNITS do
    if unit == CN_UNITS[i][1] then return tonumber(n) * CN_UNITS[i][2] end
  end
  return nil
end

-- ---- deadlines written in a text ---------------------------------------------------------

-- Units of "<number><unit>内" in normalised (Simplified, lower-case) text, longest first so
-- that 个工作日 is not read as 日. A working day counts as a calendar day: the profile does
-- not know the config's calendars, and a deadline read this way is never later than the
-- customer's own.
local WITHIN_UNITS = {
  { "个工作日", 86400 }, { "工作日", 86400 }, { "个小时", 3600 }, { "小时", 3600 },
  { "个钟头", 3600 }, { "钟头", 3600 }, { "分钟", 60 }, { "个星期", 604800 },
  { "星期", 604800 }, { "个月", 2592000 }, { "天", 86400 }, { "日", 86400 }, { "周", 604800 },
  { "h", 3600 },
}
local CN_DIGITS = {
  ["零"] = 0, ["一"] = 1, ["二"] = 2, ["两"] = 2, ["三"] = 3, ["四"] = 4, ["五"] = 5,
  ["六"] = 6, ["七"] = 7, ["八"] = 8, ["九"] = 9,
}
local CN_TENS = { ["十"] = 10, ["百"] = 100 }
local WITHIN = "内"
-- Clause ends after NFKC (，；！？ become ASCII; 。 and 、 stay). "." is left out: it is the
-- decimal point of "1.5小时" far more often than a sentence end in Chinese feedback.
local CLAUSE_END = "[,;!?\n]"
local FULL_STOPS = { "。", "、" }

-- The value of a Chinese numeral ("二十四" 24, "十二" 12, "两" 2), or nil.
local function cn_number(s)
  if s == "" then return nil end
  local total, digit = 0, nil
  for _, cp in utf8.codes(s) do
    local ch = utf8.char(cp)
    if CN_DIGITS[ch] then
      digit = CN_DIGITS[ch]
    elseif CN_TENS[ch] then
      total = total + (digit or 1) * CN_TENS[ch]
      digit = nil
    else
      return nil
    end
  end
  return total + (digit or 0)
end

-- The number written right before byte position `stop` (exclusive): "24", "1.5", "两",
-- "二十四", "半" (0.5), "1个半" (1.5). Returns the value and where the number starts, or nil.
local function number_before(text, stop)
  local head = text:sub(1, stop - 1):gsub("%s+$", "")
  local half = false
  if head:sub(-3) == "半" then
    half, head = true, head:sub(1, -4)
    if head:sub(-3) == "个" then head = head:sub(1, -4) end
  end
  local digits = head:match("(%d+%.%d+)$") or head:match("(%d+)$")
  local value, start
  if digits then
    value, start = tonumber(digits), #head - #digits + 1
  else
    local i = #head + 1
    while i > 3 do
      local ch = head:sub(i - 3, i - 1)
      if not (CN_DIGITS[ch] or CN_TENS[ch]) then break end
      i = i - 3
    end
    value, start = cn_number(head:sub(i)), i
  end
  if half then
    return (value or 0) + 0.5, start
  end
  if not value or value <= 0 then return nil end
  return value, start
end

-- Position of the last match of `pat` in `s`, or nil. One forward pass: ".*()" .. pat would
-- backtrack, and the sandbox refuses such patterns on long texts before they run.
local function last_of(s, pat)
  local last
  for at in s:gmatch("()" .. pat) do last = at end
  return last
end

-- Bounds of the clause around byte position `pos`: from after the previous punctuation to
-- before the next. Each search is one pass over the text.
local function clause_bounds(text, pos)
  local head = text:sub(1, pos - 1)
  local first = (last_of(head, CLAUSE_END) or 0) + 1
  for _, stop in ipairs(FULL_STOPS) do
    local s = last_of(head, stop)
    if s and s + #stop > first then first = s + #stop end
  end
  local last = (text:find(CLAUSE_END, pos) or #text + 1) - 1
  for _, stop in ipairs(FULL_STOPS) do
    local s = text:find(stop, pos, true)
    if s and s - 1 < last then last = s - 1 end
  end
  return first, last
end

-- Deadlines a customer wrote into a normalised text, as "<number><unit>内" (also 之内,
-- 以内): "24小时内提交8d报告", "请于两个工作日内回复", "半小时内联系". A list of
-- { seconds = n, after = the words after 内, before = the words before the number }, in
-- text order; {} when there are none. `after` and `before` stay within the clause and stop
-- at a neighbouring deadline ("12小时内回复原因并于72小时内提交8d报告" is two deadlines
-- with their own words). Dates ("11月25日前") are not read.
function M.stated_deadlines(text)
  local found = {}
  if type(text) ~= "string" or not text:find(WITHIN, 1, true) then return found end
  local init = 1
  while true do
    local at = text:find(WITHIN, init, true)
    if not at then break end
    init = at + #WITHIN
    local unit_end = at
    local prev = text:sub(at - 3, at - 1)
    if prev == "之" or prev == "以" then unit_end = at - 3 end
    for _, u in ipairs(WITHIN_UNITS) do
      local word = u[1]
      if text:sub(unit_end - #word, unit_end - 1) == word then
        local n, start = number_before(text, unit_end - #word)
        if n then
          local first, last = clause_bounds(text, at)
          found[#found + 1] = { seconds = n * u[2], start = start, stop = init, first = first,
                                last = last }
        end
        break
      end
    end
  end
  local out = {}
  for i, d in ipairs(found) do
    local next_d, prev_d = found[i + 1], found[i - 1]
    local last = next_d and math.min(d.last, next_d.start - 1) or d.last
    local first = prev_d and math.max(d.first, prev_d.stop) or d.first
    out[i] = { seconds = d.seconds, after = text:sub(d.stop, last),
               before = text:sub(first, d.start - 1) }
  end
  return out
end

local function topics_in(part, topics)
  local hits, specific = {}, false
  for _, topic in ipairs(topics) do
    for _, word in ipairs(topic.words) do
      if part:find(word, 1, true) then
        hits[#hits + 1] = topic
        specific = specific or not topic.fallback
        break
      end
    end
  end
  return hits, specific
end

-- Which clocks the deadlines of M.stated_deadlines are about. `topics` is a list of
-- { clock = name, words = { ... }, fallback = true|nil } (plain, normalised words). The
-- words after a deadline decide ("3天内提交8d报告"), else those before it ("8d报告请在3天
-- 内提交"); a deadline applies to every topic named there ("24小时内回复原因并结案"), a
-- `fallback` topic (a bare "回复") only when no other is. Returns { [clock] = seconds },
-- the shortest when a clock is named twice.
function M.stated_targets(text, topics)
  local targets = {}
  for _, d in ipairs(M.stated_deadlines(text)) do
    local hits, specific = topics_in(d.after, topics)
    if #hits == 0 then hits, specific = topics_in(d.before, topics) end
    for _, topic in ipairs(hits) do
      local clock = topic.clock
      if not (specific and topic.fallback)
          and (not targets[clock] or d.seconds < targets[clock]) then
        targets[clock] = d.seconds
      end
    end
  end
  return targets
end

-- ---- actions ----------------------------------------------------------------------------

-- The `assigned` action that hands a freshly classified case to its lead department with
-- its collaborators, or nil when there is nothing to hand over (no department, or the case
-- is already with that department).
function M.assign_action(case, note)
  local c = case.classification
  if not c or not c.department or c.department == "" then return nil end
  local last = M.last_event(case, "assigned")
  if last and last.data and last.data.department == c.department then return nil end
  return { event = "assigned", note = note,
           data = { department = c.department, collaborators = c.collaborators or {} } }
end

-- A short label of a case for notification messages: "#42 产品质量/严重 电饭煲无法加热".
function M.label(case)
  local c = case.classification or {}
  local subject = case.subject or case.text or ""
  if utf8.len(subject) and utf8.len(subject) > 40 then
    subject = subject:sub(1, utf8.offset(subject, 41) - 1) .. "…"
  end
  return string.format("#%s %s/%s %s", tostring(case.id), c.category or "?",
                       c.severity or "?", subject)
end

-- What every shipped profile does when a clock runs late: warn with a tag, and on a breach
-- also tell the notifier (and tag the case, so lists and reports can find it).
function M.clock_actions(case, clock, status, notifier)
  if status == "warning" then
    return { { tag = "sla_warning" } }
  end
  return {
    { tag = "overdue" },
    { tag = "overdue:" .. clock.name },
    { notify = notifier,
      message = string.format("超时: %s 时限 %s 已过 (%s)", M.label(case), clock.name,
                              clock.due_at or "?") },
  }
end

-- Append the items of list b to list a (new list).
function M.concat(a, b)
  local out = {}
  for i = 1, #a do out[#out + 1] = a[i] end
  for i = 1, #b do out[#out + 1] = b[i] end
  return out
end

return M
