-- The keyword profile bench_rules measures: five categories, ~40 keywords, the shape of a
-- real classify hook (first category whose keywords occur, then a severity check).
local CATEGORIES = {
  { "产品质量", "质量部", voc.keywords({ "质量", "坏了", "故障", "无法加热", "不能加热", "漏水",
                                        "异响", "破损", "发霉", "变质", "异物", "冒烟" }) },
  { "服务态度", "客服部", voc.keywords({ "态度", "不耐烦", "没人理", "推诿", "敷衍", "挂断" }) },
  { "交付及时性", "物流部", voc.keywords({ "延期", "太慢", "没到", "超时", "催单", "没有上门" }) },
  { "产品功能", "研发部", voc.keywords({ "功能", "建议增加", "希望能", "不好用", "兼容", "不准" }) },
}
local SEVERE = voc.keywords({ "停产", "批量", "安全隐患", "受伤", "起火", "食品安全", "孩子" })
-- All of them in one set, for the 10 KB scan figure.
local ALL = voc.keywords({ "质量", "坏了", "故障", "无法加热", "不能加热", "漏水", "异响", "破损",
                           "发霉", "变质", "异物", "冒烟", "态度", "不耐烦", "没人理", "推诿",
                           "敷衍", "挂断", "延期", "太慢", "没到", "超时", "催单", "没有上门",
                           "功能", "建议增加", "希望能", "不好用", "兼容", "不准", "停产", "批量",
                           "安全隐患", "受伤", "起火", "食品安全", "孩子", "退货", "赔偿", "投诉" })

return {
  name = "bench",
  classify = function(case)
    local text = case.normalized
    for _, c in ipairs(CATEGORIES) do
      local hit = voc.contains_any(text, c[3])
      if hit then
        local severe = voc.contains_any(text, SEVERE)
        return { kind = "complaint", category = c[1], department = c[2],
                 severity = severe and "严重" or "一般", priority = severe and 1 or 3,
                 tags = { hit } }
      end
    end
    return { kind = "opinion", category = "其他" }
  end,
  guard = function(case, event) return true end,
  -- bench_rules: ten scans of the case text per call
  on_event = function(case, event)
    local text = case.normalized
    for _ = 1, 10 do voc.contains_any(text, ALL) end
  end,
}
