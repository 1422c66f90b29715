/* The `voc` library profiles get (docs/lua-api.md has the user's view):
 *
 *   voc.normalize(text)            NFKC + case fold + Traditional -> Simplified (textnorm.h)
 *   voc.contains_any(text, list)   first keyword of `list` found in `text` (both compared
 *                                  normalised), or nil; `list` is a table of strings or a
 *                                  voc.keywords set, compiled once and cached
 *   voc.keywords(list)             compile a keyword list explicitly
 *   voc.duration(text)             "45s" "90m" "24h" "2d" "1w" "1h30m" -> seconds
 *   voc.log(...)                   like print: INFO line in the daemon log
 *
 * Normalised strings are remembered per state (bounded), so normalising the same text again,
 * or passing an already normalised string such as case.normalized to contains_any, costs a
 * table lookup.
 */
#ifndef VOC_LUA_VOC_H
#define VOC_LUA_VOC_H

#include <lua.h>

struct voc_textnorm;

/* Create the library in the sandbox (global `voc`, require("voc")). `tn` is borrowed and
 * must outlive the state. Call inside a voc_lua_call. */
void voc_lua_open_voc(lua_State *L, struct voc_textnorm *tn);

/* Push the normalised form of the string at `idx` (remembered, see above). Raises on
 * invalid UTF-8. Call inside a voc_lua_call. */
void voc_lua_push_normalized(lua_State *L, int idx);

/* Record that the string at `idx` is the current case's normalised text (case.normalized),
 * so contains_any and voc.normalize take it as it is. */
void voc_lua_mark_normalized(lua_State *L, int idx);

#endif
