-- Profile of the SLA clock benchmark (contrib/bench/clocks). Every filled case runs two
-- clocks from its `assigned` event, due 12 h to 30 d later, so none of them fires during the
-- run; the cases of the measured window also run `callback`, whose target each case carries
-- in fields.callback_s (seconds from its `acknowledged` event), so their breaches fall due
-- at known instants a few seconds after vocd is serving again.
return {
  name = "bench-clocks",

  classify = function(case)
    return { kind = "complaint", category = "产品质量", severity = "一般",
             department = "质量部", priority = 3 }
  end,

  clocks = {
    { name = "resolve", start = "assigned", stop = "resolved", target = "24h", warn = 0.75 },
    { name = "close", start = "assigned", stop = "closed", target = "30d" },
    { name = "callback", start = "acknowledged", stop = "replied",
      target = function(case)
        return tonumber(case.fields and case.fields.callback_s) or 3600
      end },
  },

  -- Every firing runs the hook, as in production.
  on_clock = function(case, clock, status)
    return { { tag = "sla_" .. clock.name .. "_" .. status } }
  end,
}
