/* JSON <-> Lua values for the rule engine.
 *
 * JSON to Lua: objects and arrays become tables (arrays 1-based), null becomes nil (so the
 * field is simply absent), integers stay integers.
 *
 * Lua to JSON: a table whose keys are exactly 1..n is an array, a table with string keys an
 * object, an empty table whatever the caller asks for; mixed or sparse tables, non-finite
 * numbers, strings that are not UTF-8, userdata and threads are errors, as are functions
 * unless the caller asks to skip them. Tables are read raw (no metamethods run) and nesting
 * is limited, so a cycle is an error rather than a crash. The output is limited too: a table
 * reached many times over (t = {a = u, b = u}, u = {a = v, b = v} ... thirty deep is 2^30
 * values) or a long string referenced from everywhere would otherwise turn a few bytes of
 * Lua memory into gigabytes of JSON, outside the state's memory budget.
 */
#ifndef VOC_LUA_JSON_H
#define VOC_LUA_JSON_H

#include <jansson.h>
#include <lua.h>
#include <stdbool.h>
#include <stddef.h>

#define VOC_LUA_JSON_MAX_DEPTH 32

/* Prepare the state for voc_lua_push_json (a table of common field names). Optional; call
 * once, inside a voc_lua_call. */
void voc_lua_json_init(lua_State *L);

/* Push `value` as a Lua value. Raises a Lua error when nesting exceeds the limit or memory
 * runs out, so call it inside a voc_lua_call. */
void voc_lua_push_json(lua_State *L, const json_t *value);

enum voc_lua_json_empty { VOC_LUA_JSON_EMPTY_OBJECT, VOC_LUA_JSON_EMPTY_ARRAY };

/* What Lua-to-JSON conversions may still produce: values (each table, string, number and
 * boolean is one) and bytes of strings and field names. Decremented as they go; one budget
 * can be shared by several conversions (all actions of one hook result). */
struct voc_lua_json_budget {
    size_t values;
    size_t bytes;
};
#define VOC_LUA_JSON_MAX_VALUES 100000
#define VOC_LUA_JSON_MAX_BYTES ((size_t)1 << 20)

struct voc_lua_json_opts {
    enum voc_lua_json_empty empty; /* what an empty table becomes (at every level) */
    bool skip_functions;           /* leave out fields and items that are functions */
    /* Field names that always hold lists (NULL-terminated, may be NULL): an empty table
     * under one of these names becomes [] whatever `empty` says, so `collaborators = {}`
     * stays a list in event data. */
    const char *const *list_fields;
    /* NULL: this conversion alone gets VOC_LUA_JSON_MAX_VALUES and VOC_LUA_JSON_MAX_BYTES. */
    struct voc_lua_json_budget *budget;
};

/* Convert the Lua value at `idx`. Never raises: on failure returns NULL and writes
 * "path: reason" (path like `data.items[2]`, starting with `name`) into err[errsize]. */
json_t *voc_lua_to_json(lua_State *L, int idx, const struct voc_lua_json_opts *opts,
                        const char *name, char *err, size_t errsize);

#endif
