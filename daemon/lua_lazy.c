#include "lua_lazy.h"
#include "lua_json.h"

#include <lauxlib.h>
#include <string.h>

#define LAZY_UDATA "voc.lazy"

/* The JSON side of one lazy table. Its user value is a table of the keys already decided
 * (converted, assigned or found missing), created on first use: a key in it is never
 * converted again, so an assigned nil stays nil. */
struct lazy {
    json_t *object;
    voc_lua_lazy_missing missing;
    voc_lua_lazy_converted converted;
};

static int lazy_gc(lua_State *L)
{
    struct lazy *z = luaL_checkudata(L, 1, LAZY_UDATA);
    json_decref(z->object);
    z->object = NULL;
    return 0;
}

/* The state of the lazy table at `idx` (its metatable's [1]); NULL if it has none. */
static struct lazy *state_of(lua_State *L, int idx)
{
    if (!lua_getmetatable(L, idx))
        return NULL;
    lua_rawgeti(L, -1, 1);
    struct lazy *z = luaL_testudata(L, -1, LAZY_UDATA);
    lua_pop(L, 2);
    return z;
}

/* Push the decided-keys table of the lazy table at `idx`, creating it if asked. Pushes nil
 * when there is none and `create` is 0. */
static void push_decided(lua_State *L, int idx, int create)
{
    lua_getmetatable(L, idx);
    lua_rawgeti(L, -1, 1);
    lua_remove(L, -2);
    if (lua_getiuservalue(L, -1, 1) != LUA_TTABLE && create) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_setiuservalue(L, -3, 1);
    }
    lua_remove(L, -2);
}

static int is_decided(lua_State *L, int table, int key)
{
    push_decided(L, table, 0);
    if (!lua_istable(L, -1)) {
        lua_pop(L, 1);
        return 0;
    }
    lua_pushvalue(L, key);
    int decided = lua_rawget(L, -2) != LUA_TNIL;
    lua_pop(L, 2);
    return decided;
}

static void mark_decided(lua_State *L, int table, int key)
{
    push_decided(L, table, 1);
    lua_pushvalue(L, key);
    lua_pushboolean(L, 1);
    lua_rawset(L, -3);
    lua_pop(L, 1);
}

/* Convert field `key` (a string at index `key`) of the lazy table at `table` and store it
 * there; pushes the value (nil when the object lacks it and `missing` has nothing). */
static void materialize(lua_State *L, struct lazy *z, int table, int key)
{
    mark_decided(L, table, key);
    size_t len;
    const char *name = lua_tolstring(L, key, &len);
    json_t *value = json_object_getn(z->object, name, len);
    if (value && !json_is_null(value)) {
        voc_lua_push_json(L, value);
        if (z->converted)
            z->converted(L, name, lua_gettop(L));
    } else if (z->missing) {
        /* The hook sees the usual (table, key) arguments. */
        lua_pushcfunction(L, z->missing);
        lua_pushvalue(L, table);
        lua_pushvalue(L, key);
        lua_call(L, 2, 1);
    } else {
        lua_pushnil(L);
    }
    if (lua_isnil(L, -1))
        return;
    lua_pushvalue(L, key);
    lua_pushvalue(L, -2);
    lua_rawset(L, table);
}

static int lazy_index(lua_State *L)
{
    struct lazy *z = state_of(L, 1);
    if (!z || lua_type(L, 2) != LUA_TSTRING || is_decided(L, 1, 2))
        return 0;
    materialize(L, z, 1, 2);
    return 1;
}

static int lazy_newindex(lua_State *L)
{
    if (state_of(L, 1) && lua_type(L, 2) == LUA_TSTRING)
        mark_decided(L, 1, 2);
    lua_rawset(L, 1);
    return 0;
}

/* The iterator of pairs: `next` over the (by then complete) plain table. */
static int lazy_next(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 2);
    if (lua_next(L, 1))
        return 2;
    lua_pushnil(L);
    return 1;
}

/* pairs: convert every field not decided yet, then iterate the plain table. */
static int lazy_pairs(lua_State *L)
{
    struct lazy *z = state_of(L, 1);
    if (z) {
        const char *name;
        size_t len;
        json_t *value;
        json_object_keylen_foreach(z->object, name, len, value)
        {
            (void)value;
            lua_pushlstring(L, name, len);
            int key = lua_gettop(L);
            if (!is_decided(L, 1, key)) {
                /* Only fields the object has: `missing` values are not listed. */
                voc_lua_lazy_missing missing = z->missing;
                z->missing = NULL;
                materialize(L, z, 1, key);
                z->missing = missing;
                lua_pop(L, 1);
            }
            lua_pop(L, 1);
        }
    }
    lua_pushcfunction(L, lazy_next);
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    return 3;
}

void voc_lua_push_lazy(lua_State *L, json_t *object, voc_lua_lazy_missing missing,
                       voc_lua_lazy_converted converted)
{
    luaL_checkstack(L, 4, "lazy table");
    lua_createtable(L, 0, 4);
    /* A metatable per table, holding its state: 4 fields instead of the whole case. */
    lua_createtable(L, 1, 4);
    lua_pushcfunction(L, lazy_index);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, lazy_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_pushcfunction(L, lazy_pairs);
    lua_setfield(L, -2, "__pairs");
    /* Rules must not swap it: getmetatable gives false, setmetatable fails. */
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    struct lazy *z = lua_newuserdatauv(L, sizeof *z, 1);
    z->object = NULL;
    z->missing = missing;
    z->converted = converted;
    if (luaL_newmetatable(L, LAZY_UDATA)) { /* first use in this state */
        lua_pushcfunction(L, lazy_gc);
        lua_setfield(L, -2, "__gc");
        lua_pushboolean(L, 0);
        lua_setfield(L, -2, "__metatable");
    }
    lua_setmetatable(L, -2);
    z->object = json_incref(object);
    lua_rawseti(L, -2, 1);
    lua_setmetatable(L, -2);
}
