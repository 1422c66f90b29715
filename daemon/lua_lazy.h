/* A JSON object as a Lua table whose fields are converted on first use.
 *
 * Hooks get the whole case (record, classification, clocks, every event) but read a few of its
 * fields; converting all of it for each of the half-dozen hook calls of a new case was the
 * largest single cost of taking a case in. A lazy table converts a field (the whole value, as
 * voc_lua_push_json does) when it is first read, and keeps it.
 *
 * To a rule it behaves as a plain table: indexing, assignment (also of nil), `pairs`, and a
 * field is the same table each time it is read. What differs: `next`, `rawget` and `rawlen`
 * see only the fields read so far, and its metatable is protected (`getmetatable` returns
 * false, `setmetatable` fails). docs/lua-api.md says so.
 */
#ifndef VOC_LUA_LAZY_H
#define VOC_LUA_LAZY_H

#include <jansson.h>
#include <lua.h>

/* Called for a key the object does not have (or has as null), with the table at index 1 and
 * the key at index 2; returns 1 with the value pushed (it is stored in the table), or 0. */
typedef int (*voc_lua_lazy_missing)(lua_State *L);

/* Called after field `key` was converted from the object, with its value at index `idx`. */
typedef void (*voc_lua_lazy_converted)(lua_State *L, const char *key, int idx);

/* Push `object` (a JSON object; it is kept with a reference until the table is collected) as
 * a lazy table. `missing` and `converted` may be NULL. Raises on memory errors. */
void voc_lua_push_lazy(lua_State *L, json_t *object, voc_lua_lazy_missing missing,
                       voc_lua_lazy_converted converted);

#endif
