#include "lua_json.h"

#include <lauxlib.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

/* ---- JSON to Lua -------------------------------------------------------------------- */

/* Field names of case views, events and clocks (docs/api.md). Each hook call converts a
 * whole case view; taking these names from a table of ready-made Lua strings saves hashing
 * and interning them again every time, which was a fifth of the cost of a call. */
/* clang-format off */
static const char *const known_keys[] = {
    "id", "state", "created_at", "updated_at", "external_id", "channel", "source",
    "received_at", "customer", "product", "subject", "text", "expected", "attachments",
    "fields", "classification", "kind", "category", "severity", "department", "collaborators",
    "priority", "tags", "duplicate_of", "duplicates", "reopen_count", "satisfaction", "clocks",
    "events", "seq", "type", "at", "actor", "note", "data", "name", "contact", "region",
    "account", "model", "batch", "size", "sha256", "target_s", "started_at", "due_at",
    "stopped_at", "status", "normalized", "breached", "of", "due"};
/* clang-format on */
#define KNOWN_COUNT (sizeof known_keys / sizeof known_keys[0])
#define KNOWN_SLOTS 256 /* power of two, well above KNOWN_COUNT */

static unsigned char known_slots[KNOWN_SLOTS]; /* index + 1, 0 = empty */
static pthread_once_t known_once = PTHREAD_ONCE_INIT;
static const char KEYS_KEY = 0; /* registry: the strings, known_keys order */

static unsigned known_hash(const char *key, size_t len)
{
    return ((unsigned)len * 131u + (unsigned char)key[0] * 31u + (unsigned char)key[len - 1] * 7u +
            (unsigned char)key[len / 2]) &
           (KNOWN_SLOTS - 1);
}

static void known_build(void)
{
    for (size_t i = 0; i < KNOWN_COUNT; i++) {
        unsigned h = known_hash(known_keys[i], strlen(known_keys[i]));
        while (known_slots[h])
            h = (h + 1) & (KNOWN_SLOTS - 1);
        known_slots[h] = (unsigned char)(i + 1);
    }
}

/* Index of key in known_keys, or -1. */
static int known_index(const char *key, size_t len)
{
    if (len == 0)
        return -1;
    for (unsigned h = known_hash(key, len);; h = (h + 1) & (KNOWN_SLOTS - 1)) {
        int i = known_slots[h] - 1;
        if (i < 0)
            return -1;
        if (strncmp(known_keys[i], key, len) == 0 && known_keys[i][len] == '\0')
            return i;
    }
}

void voc_lua_json_init(lua_State *L)
{
    pthread_once(&known_once, known_build);
    lua_createtable(L, (int)KNOWN_COUNT, 0);
    for (size_t i = 0; i < KNOWN_COUNT; i++) {
        lua_pushstring(L, known_keys[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_rawsetp(L, LUA_REGISTRYINDEX, &KEYS_KEY);
}

static void push_value(lua_State *L, const json_t *v, int depth, int keys)
{
    if (depth > VOC_LUA_JSON_MAX_DEPTH)
        luaL_error(L, "data nested deeper than %d levels", VOC_LUA_JSON_MAX_DEPTH);
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        luaL_checkstack(L, 3, "nested data");
        lua_createtable(L, 0, (int)json_object_size(v));
        const char *key;
        size_t key_len;
        json_t *item;
        json_object_keylen_foreach((json_t *)v, key, key_len, item)
        {
            if (json_is_null(item))
                continue;
            int known = keys ? known_index(key, key_len) : -1;
            if (known >= 0)
                lua_rawgeti(L, keys, known + 1);
            else
                lua_pushlstring(L, key, key_len);
            push_value(L, item, depth + 1, keys);
            lua_rawset(L, -3);
        }
        break;
    }
    case JSON_ARRAY: {
        luaL_checkstack(L, 2, "nested data");
        size_t n = json_array_size(v);
        lua_createtable(L, (int)n, 0);
        for (size_t i = 0; i < n; i++) {
            const json_t *item = json_array_get(v, i);
            if (json_is_null(item))
                continue;
            push_value(L, item, depth + 1, keys);
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
        break;
    }
    case JSON_STRING:
        lua_pushlstring(L, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        lua_pushinteger(L, (lua_Integer)json_integer_value(v));
        break;
    case JSON_REAL:
        lua_pushnumber(L, (lua_Number)json_real_value(v));
        break;
    case JSON_TRUE:
        lua_pushboolean(L, 1);
        break;
    case JSON_FALSE:
        lua_pushboolean(L, 0);
        break;
    case JSON_NULL:
    default:
        lua_pushnil(L);
        break;
    }
}

void voc_lua_push_json(lua_State *L, const json_t *value)
{
    int keys = 0;
    if (json_is_object(value) || json_is_array(value)) {
        if (lua_rawgetp(L, LUA_REGISTRYINDEX, &KEYS_KEY) == LUA_TTABLE)
            keys = lua_gettop(L);
        else
            lua_pop(L, 1);
    }
    push_value(L, value, 0, keys);
    if (keys)
        lua_remove(L, keys);
}

/* ---- Lua to JSON -------------------------------------------------------------------- */

/* Only API calls that cannot raise are used below (raw reads, lua_next, lua_checkstack), so
 * a half-built result is always freed by us and never leaked by a longjmp. */
struct conv {
    lua_State *L;
    const struct voc_lua_json_opts *opts;
    struct voc_lua_json_budget *budget;
    char *err;
    size_t errsize;
    char path[256];
};

static json_t *fail(struct conv *c, const char *reason)
{
    snprintf(c->err, c->errsize, "%s: %s", c->path, reason);
    return NULL;
}

static size_t path_push_key(struct conv *c, size_t at, const char *key)
{
    snprintf(c->path + at, sizeof c->path - at, ".%s", key);
    return strlen(c->path);
}

static size_t path_push_index(struct conv *c, size_t at, lua_Integer i)
{
    snprintf(c->path + at, sizeof c->path - at, "[%lld]", (long long)i);
    return strlen(c->path);
}

static json_t *convert(struct conv *c, int idx, size_t at, int depth);

static bool is_list_field(const struct voc_lua_json_opts *opts, const char *key)
{
    for (const char *const *f = opts->list_fields; f && *f; f++)
        if (strcmp(*f, key) == 0)
            return true;
    return false;
}

static json_t *convert_table(struct conv *c, int idx, size_t at, int depth)
{
    lua_State *L = c->L;
    if (depth > VOC_LUA_JSON_MAX_DEPTH)
        return fail(c, "nested too deeply (a table that contains itself?)");
    if (!lua_checkstack(L, 4))
        return fail(c, "out of memory");
    lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
    lua_Integer listed = 0;
    bool named = false;
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        bool skip = c->opts->skip_functions && lua_type(L, -1) == LUA_TFUNCTION;
        int kt = lua_type(L, -2);
        if (kt == LUA_TSTRING) {
            named = true;
        } else if (kt == LUA_TNUMBER && lua_isinteger(L, -2) && lua_tointeger(L, -2) >= 1 &&
                   lua_tointeger(L, -2) <= n) {
            if (!skip)
                listed++;
        } else {
            char reason[128];
            snprintf(reason, sizeof reason, "%s keys are not allowed (use names or a list 1..n)",
                     kt == LUA_TNUMBER ? "non-sequential number" : lua_typename(L, kt));
            lua_pop(L, 2);
            return fail(c, reason);
        }
        lua_pop(L, 1);
    }
    if (named && listed > 0)
        return fail(c, "mixes list items and named fields");

    if (named) {
        json_t *obj = json_object();
        if (!obj)
            return fail(c, "out of memory");
        lua_pushnil(L);
        while (lua_next(L, idx) != 0) {
            if (c->opts->skip_functions && lua_type(L, -1) == LUA_TFUNCTION) {
                lua_pop(L, 1);
                continue;
            }
            size_t klen;
            const char *key = lua_tolstring(L, -2, &klen); /* a string: no conversion */
            if (klen > c->budget->bytes) {
                lua_pop(L, 2);
                json_decref(obj);
                return fail(c, "too much data (field names count toward the text limit)");
            }
            c->budget->bytes -= klen;
            size_t sub = path_push_key(c, at, key);
            json_t *item = convert(c, lua_gettop(L), sub, depth + 1);
            c->path[at] = '\0';
            lua_pop(L, 1);
            if (!item) {
                lua_pop(L, 1);
                json_decref(obj);
                return NULL;
            }
            if (json_is_object(item) && json_object_size(item) == 0 &&
                is_list_field(c->opts, key)) {
                json_decref(item);
                item = json_array();
            }
            if (json_object_setn_new(obj, key, klen, item) != 0) {
                lua_pop(L, 1);
                json_decref(obj);
                path_push_key(c, at, "");
                return fail(c, "field name is not valid UTF-8");
            }
        }
        return obj;
    }

    bool as_array = listed > 0 || c->opts->empty == VOC_LUA_JSON_EMPTY_ARRAY;
    json_t *out = as_array ? json_array() : json_object();
    if (!out)
        return fail(c, "out of memory");
    for (lua_Integer i = 1; i <= n && listed > 0; i++) {
        if (lua_rawgeti(L, idx, i) == LUA_TFUNCTION && c->opts->skip_functions) {
            lua_pop(L, 1);
            continue;
        }
        size_t sub = path_push_index(c, at, i);
        json_t *item = convert(c, lua_gettop(L), sub, depth + 1);
        c->path[at] = '\0';
        lua_pop(L, 1);
        if (!item || json_array_append_new(out, item) != 0) {
            json_decref(out);
            return item ? fail(c, "out of memory") : NULL;
        }
    }
    return out;
}

/* Take one value and `bytes` bytes of text from the budget; false when it is used up. */
static bool spend(struct conv *c, size_t bytes)
{
    struct voc_lua_json_budget *b = c->budget;
    if (b->values == 0 || bytes > b->bytes) {
        char reason[160];
        snprintf(reason, sizeof reason,
                 "too much data (at most %d values and %d KiB of text; a table that appears "
                 "many times over, or a very long string?)",
                 VOC_LUA_JSON_MAX_VALUES, (int)(VOC_LUA_JSON_MAX_BYTES >> 10));
        fail(c, reason);
        return false;
    }
    b->values--;
    b->bytes -= bytes;
    return true;
}

static json_t *convert(struct conv *c, int idx, size_t at, int depth)
{
    lua_State *L = c->L;
    size_t text = 0;
    if (lua_type(L, idx) == LUA_TSTRING)
        lua_tolstring(L, idx, &text);
    if (!spend(c, text))
        return NULL;
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        return json_null();
    case LUA_TBOOLEAN:
        return json_boolean(lua_toboolean(L, idx));
    case LUA_TNUMBER: {
        if (lua_isinteger(L, idx))
            return json_integer((json_int_t)lua_tointeger(L, idx));
        double d = (double)lua_tonumber(L, idx);
        if (!isfinite(d))
            return fail(c, "numbers must be finite");
        return json_real(d);
    }
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        json_t *str = json_stringn(s, len);
        return str ? str : fail(c, "text is not valid UTF-8");
    }
    case LUA_TTABLE:
        return convert_table(c, idx, at, depth);
    default: {
        char reason[128];
        snprintf(reason, sizeof reason,
                 "a %s cannot be stored (only tables, strings, numbers and booleans)",
                 lua_typename(L, lua_type(L, idx)));
        return fail(c, reason);
    }
    }
}

json_t *voc_lua_to_json(lua_State *L, int idx, const struct voc_lua_json_opts *opts,
                        const char *name, char *err, size_t errsize)
{
    struct voc_lua_json_budget own = {VOC_LUA_JSON_MAX_VALUES, VOC_LUA_JSON_MAX_BYTES};
    struct conv c = {.L = L,
                     .opts = opts,
                     .budget = opts->budget ? opts->budget : &own,
                     .err = err,
                     .errsize = errsize};
    snprintf(c.path, sizeof c.path, "%s", name);
    if (errsize)
        err[0] = '\0';
    return convert(&c, lua_absindex(L, idx), strlen(c.path), 0);
}
