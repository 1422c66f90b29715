/* JSON <-> Lua values for the rule engine.
 *
 * JSON to Lua: objects and arrays become tables (arrays 1-based), null becomes nil (so the
 * field is simply absent), integers stay integers.
 *
 * Lua to JSON: a table whose keys are exactly 1..n is an array, a table with string keys an
 * object, an empty table whatever the caller asks for; mixed or sparse tables, non-finite
 * numbers, strings that are not UTF-8, userdata and threads are errors, as are functions
 * unless the caller asks to skip them. Tables are read raw (no metamethods run) and nesting
 * is limited, so a cycle is an error rather than a crash.
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

struct voc_lua_json_opts {
    enum voc_lua_json_empty empty; /* what an empty table becomes (at every level) */
    bool skip_functions;           /* leave out fields and items that are functions */
    /* Field names that always hold lists (NULL-terminated, may be NULL): an empty table
     * under one of these names becomes [] whatever `empty` says, so `collaborators = {}`
     * stays a list in event data. */
    const char *const *list_fields;
};

/* Convert the Lua value at `idx`. Never raises: on failure returns NULL and writes
 * "path: reason" (path like `data.items[2]`, starting with `name`) into err[errsize]. */
json_t *voc_lua_to_json(lua_State *L, int idx, const struct voc_lua_json_opts *opts,
                        const char *name, char *err, size_t errsize);

#endif
