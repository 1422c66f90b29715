-- The baseline of bench_classify: a classify that decides nothing. What it costs is the
-- fixed price of a hook call (the case view as Lua tables, the protected call, the check of
-- the result and the defaults merged in); a shipped profile's rules come on top of it.
return {
  name = "noop",
  classify = function(case) return {} end,
}
