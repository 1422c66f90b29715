#include "lua_voc.h"
#include "keyword_match.h"
#include "lua_sandbox.h"
#include "options.h"
#include "textnorm.h"

#include <lauxlib.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define KEYWORDS_MT "voc.keywords"

/* Memo of normalised strings: text -> normalised, normalised -> itself. Texts longer than
 * MEMO_MAX_TEXT are not remembered, and the memo starts over past MEMO_MAX_ENTRIES or
 * MEMO_MAX_BYTES, so it never eats a noticeable part of the memory budget. */
#define MEMO_MAX_TEXT (64 * 1024)
#define MEMO_MAX_ENTRIES 512
#define MEMO_MAX_BYTES ((size_t)2 << 20)
/* Normalising costs about 30 VM instructions' worth of time per byte of Chinese text (utf8proc,
 * then OpenCC), next to nothing for ASCII; it is charged to the instruction budget at
 * NORMALIZE_INSTRUCTIONS_PER_BYTE per byte outside ASCII and one per 4 ASCII bytes, and texts
 * longer than MAX_NORMALIZE_TEXT are refused: one call must not hold the writer for long.
 * Keyword searches are one pass, charged one instruction per SCAN_BYTES_PER_INSTRUCTION. */
#define NORMALIZE_INSTRUCTIONS_PER_BYTE 4
#define MAX_NORMALIZE_TEXT ((size_t)1 << 20)
#define SCAN_BYTES_PER_INSTRUCTION 4
/* Keyword lists compiled from tables written inline in a hook (a new table every call) are
 * found again by content; this many distinct lists are kept. */
#define CONTENT_CACHE_MAX 256

/* Registry keys (addresses are unique). */
static const char LIB_KEY = 0;        /* struct voc_lib userdata */
static const char MEMO_KEY = 0;       /* memo table */
static const char BY_TABLE_KEY = 0;   /* weak-keyed: list table -> keywords userdata */
static const char BY_CONTENT_KEY = 0; /* content key -> keywords userdata */
static const char CURRENT_KEY = 0;    /* the current case's normalized string */

struct voc_lib {
    struct voc_textnorm *tn;
    char *pending; /* voc_normalize output not yet copied into Lua; freed on next use or gc */
    size_t memo_entries, memo_bytes;
    size_t content_entries;
};

struct keywords {
    struct voc_kwmatch *m;
    size_t charged;         /* bytes charged to the memory budget */
    lua_Integer source_len; /* #list when compiled from a table, to notice appended items */
};

static struct voc_lib *lib_of(lua_State *L)
{
    return lua_touserdata(L, lua_upvalueindex(1));
}

static int lib_gc(lua_State *L)
{
    struct voc_lib *lib = lua_touserdata(L, 1);
    free(lib->pending);
    lib->pending = NULL;
    return 0;
}

/* ---- normalisation ------------------------------------------------------------------ */

/* Normalise the string at idx and push the result, without the memo. */
static void push_normalized_fresh(lua_State *L, struct voc_lib *lib, int idx)
{
    size_t len, out_len;
    const char *s = lua_tolstring(L, idx, &len);
    if (len > MAX_NORMALIZE_TEXT)
        luaL_error(L, "cannot normalise a text of %d bytes (at most %d)",
                   (int)(len > INT32_MAX ? INT32_MAX : len), (int)MAX_NORMALIZE_TEXT);
    uint64_t wide = 0;
    for (size_t i = 0; i < len; i++)
        wide += (unsigned char)s[i] >> 7;
    voc_lua_charge_instructions(L, (len - wide) / 4 + wide * NORMALIZE_INSTRUCTIONS_PER_BYTE,
                                "voc.normalize");
    /* `pending` owns the C result while lua_pushlstring may raise; whoever comes next (or
     * the library's __gc) frees it, so a memory stop here leaks nothing. */
    free(lib->pending);
    lib->pending = NULL;
    int rc = voc_normalize(lib->tn, s, len, &lib->pending, &out_len);
    if (rc != VOC_NORM_OK)
        luaL_error(L, "cannot normalise text: %s", voc_normalize_strerror(rc));
    lua_pushlstring(L, lib->pending, out_len);
    free(lib->pending);
    lib->pending = NULL;
}

static void memo_reset(lua_State *L, struct voc_lib *lib)
{
    lua_createtable(L, 0, 64);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &MEMO_KEY);
    lib->memo_entries = 0;
    lib->memo_bytes = 0;
}

/* memo[key_idx] = value_idx, starting over when the memo is full. */
static void memo_put(lua_State *L, struct voc_lib *lib, int key_idx, int value_idx)
{
    size_t len = lua_rawlen(L, key_idx);
    if (len > MEMO_MAX_TEXT)
        return;
    if (lib->memo_entries >= MEMO_MAX_ENTRIES || lib->memo_bytes + len > MEMO_MAX_BYTES)
        memo_reset(L, lib);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &MEMO_KEY);
    lua_pushvalue(L, key_idx);
    lua_pushvalue(L, value_idx);
    lua_rawset(L, -3);
    lua_pop(L, 1);
    lib->memo_entries++;
    lib->memo_bytes += len;
}

static struct voc_lib *registry_lib(lua_State *L)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, &LIB_KEY);
    struct voc_lib *lib = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return lib;
}

static void push_normalized(lua_State *L, struct voc_lib *lib, int idx)
{
    idx = lua_absindex(L, idx);
    /* The common case, contains_any(case.normalized, ...): the very same string object. */
    lua_rawgetp(L, LUA_REGISTRYINDEX, &CURRENT_KEY);
    if (lua_rawequal(L, -1, idx))
        return;
    lua_pop(L, 1);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &MEMO_KEY);
    lua_pushvalue(L, idx);
    if (lua_rawget(L, -2) == LUA_TSTRING) {
        lua_remove(L, -2);
        return;
    }
    lua_pop(L, 2);
    push_normalized_fresh(L, lib, idx);
    int result = lua_gettop(L);
    memo_put(L, lib, idx, result);
    /* The result is a fixed point: normalising it again would be wasted work. */
    memo_put(L, lib, result, result);
}

void voc_lua_push_normalized(lua_State *L, int idx)
{
    push_normalized(L, registry_lib(L), idx);
}

void voc_lua_mark_normalized(lua_State *L, int idx)
{
    /* One registry slot, not a memo entry: marking must cost next to nothing because every
     * hook call with a stored view does it, used or not. */
    lua_pushvalue(L, idx);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &CURRENT_KEY);
}

static int l_normalize(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TSTRING);
    push_normalized(L, lib_of(L), 1);
    return 1;
}

/* ---- keyword sets ------------------------------------------------------------------- */

static int keywords_gc(lua_State *L)
{
    struct keywords *kw = luaL_checkudata(L, 1, KEYWORDS_MT);
    voc_kwmatch_free(kw->m);
    kw->m = NULL;
    if (kw->charged) {
        voc_lua_charge(L, -(ptrdiff_t)kw->charged);
        kw->charged = 0;
    }
    return 0;
}

static int keywords_tostring(lua_State *L)
{
    struct keywords *kw = luaL_checkudata(L, 1, KEYWORDS_MT);
    lua_pushfstring(L, "voc.keywords (%d)", kw->m ? (int)voc_kwmatch_count(kw->m) : 0);
    return 1;
}

/* Compile the list (a table of strings) at `idx` and push the keyword set. The set's user
 * value is a copy of the list, so a hit can return the keyword as the profile wrote it. */
static struct keywords *compile_list(lua_State *L, struct voc_lib *lib, int idx, const char *fn)
{
    idx = lua_absindex(L, idx);
    lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
    struct keywords *kw = lua_newuserdatauv(L, sizeof *kw, 1);
    memset(kw, 0, sizeof *kw);
    luaL_setmetatable(L, KEYWORDS_MT);
    int set = lua_gettop(L);
    lua_createtable(L, (int)n, 0);
    int originals = lua_gettop(L);
    lua_createtable(L, (int)n, 0);
    int normalized = lua_gettop(L);
    /* Pointer and length arrays live in a userdata so a Lua error cannot leak them. */
    size_t count = (size_t)n;
    const char **ptrs = lua_newuserdatauv(L, (count ? count : 1) * sizeof *ptrs, 0);
    size_t *lens = lua_newuserdatauv(L, (count ? count : 1) * sizeof *lens, 0);
    for (lua_Integer i = 1; i <= n; i++) {
        if (lua_rawgeti(L, idx, i) != LUA_TSTRING)
            luaL_error(L, "%s: keyword %d is a %s, not a string", fn, (int)i, luaL_typename(L, -1));
        if (lua_rawlen(L, -1) == 0)
            luaL_error(L, "%s: keyword %d is empty", fn, (int)i);
        lua_pushvalue(L, -1);
        lua_rawseti(L, originals, i);
        push_normalized_fresh(L, lib, -1);
        ptrs[i - 1] = lua_tolstring(L, -1, &lens[i - 1]);
        lua_rawseti(L, normalized, i); /* keeps the string (and ptrs[i-1]) alive */
        lua_pop(L, 1);
    }
    /* Refuse a list the budget cannot hold before building it, not after. */
    size_t peak = voc_kwmatch_estimate(ptrs, lens, count);
    if (peak == SIZE_MAX || voc_lua_charge(L, (ptrdiff_t)peak) != 0)
        voc_lua_memory_error(L);
    voc_lua_charge(L, -(ptrdiff_t)peak);
    char *err = NULL;
    if (voc_kwmatch_compile(ptrs, lens, count, &kw->m, &err) != 0) {
        lua_pushfstring(L, "%s: %s", fn, err ? err : "out of memory");
        free(err);
        lua_error(L);
    }
    size_t size = voc_kwmatch_memory(kw->m);
    if (voc_lua_charge(L, (ptrdiff_t)size) != 0)
        voc_lua_memory_error(L); /* kw's __gc frees the matcher */
    kw->charged = size;
    kw->source_len = n;
    lua_settop(L, originals);
    lua_setiuservalue(L, set, 1);
    return kw;
}

static int l_keywords(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    compile_list(L, lib_of(L), 1, "voc.keywords");
    return 1;
}

/* Build a key that identifies the list's content: "<len>:<bytes>" per keyword. */
static void push_content_key(lua_State *L, int idx, const char *fn)
{
    lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (lua_Integer i = 1; i <= n; i++) {
        if (lua_rawgeti(L, idx, i) != LUA_TSTRING) {
            luaL_error(L, "%s: keyword %d is a %s, not a string", fn, (int)i, luaL_typename(L, -1));
        }
        size_t len;
        const char *s = lua_tolstring(L, -1, &len);
        lua_pop(L, 1); /* the list keeps s alive */
        char prefix[24];
        int plen = snprintf(prefix, sizeof prefix, "%zu:", len);
        luaL_addlstring(&b, prefix, (size_t)plen);
        luaL_addlstring(&b, s, len);
    }
    luaL_pushresult(&b);
}

/* The keyword set for the list at idx: a voc.keywords value as is; a table through the
 * caches, compiling it on a miss. Pushes the set. */
static struct keywords *keywords_for(lua_State *L, struct voc_lib *lib, int idx, const char *fn)
{
    idx = lua_absindex(L, idx);
    struct keywords *kw = luaL_testudata(L, idx, KEYWORDS_MT);
    if (kw) {
        lua_pushvalue(L, idx);
        return kw;
    }
    if (lua_type(L, idx) != LUA_TTABLE)
        luaL_error(L, "%s: the keyword list must be a table of strings or voc.keywords", fn);

    /* Same table as last time: the usual case, a list defined once at the top of the
     * profile. A changed length means it was edited since; compile it again then. */
    lua_rawgetp(L, LUA_REGISTRYINDEX, &BY_TABLE_KEY);
    int by_table = lua_gettop(L);
    lua_pushvalue(L, idx);
    lua_rawget(L, by_table);
    kw = luaL_testudata(L, -1, KEYWORDS_MT);
    if (kw && kw->source_len == (lua_Integer)lua_rawlen(L, idx)) {
        lua_remove(L, by_table);
        return kw;
    }
    lua_pop(L, 1);

    push_content_key(L, idx, fn);
    int key = lua_gettop(L);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &BY_CONTENT_KEY);
    int by_content = lua_gettop(L);
    lua_pushvalue(L, key);
    lua_rawget(L, by_content);
    kw = luaL_testudata(L, -1, KEYWORDS_MT);
    if (!kw) {
        lua_pop(L, 1);
        kw = compile_list(L, lib, idx, fn);
        if (lib->content_entries >= CONTENT_CACHE_MAX) {
            lua_newtable(L);
            lua_pushvalue(L, -1);
            lua_rawsetp(L, LUA_REGISTRYINDEX, &BY_CONTENT_KEY);
            lua_replace(L, by_content);
            lib->content_entries = 0;
        }
        lua_pushvalue(L, key);
        lua_pushvalue(L, -2);
        lua_rawset(L, by_content);
        lib->content_entries++;
    }
    lua_pushvalue(L, idx);
    lua_pushvalue(L, -2);
    lua_rawset(L, by_table);
    /* Leave only the set. */
    lua_replace(L, by_table);
    lua_settop(L, by_table);
    return kw;
}

static int l_contains_any(lua_State *L)
{
    struct voc_lib *lib = lib_of(L);
    /* An absent field (case.subject of a case without one) simply contains nothing. */
    if (lua_isnil(L, 1)) {
        keywords_for(L, lib, 2, "voc.contains_any"); /* still check the list */
        lua_pushnil(L);
        return 1;
    }
    luaL_checktype(L, 1, LUA_TSTRING);
    lua_settop(L, 2);
    struct keywords *kw = keywords_for(L, lib, 2, "voc.contains_any"); /* 3 */
    push_normalized(L, lib, 1);                                        /* 4 */
    size_t len, hit;
    const char *text = lua_tolstring(L, 4, &len);
    voc_lua_charge_instructions(L, len / SCAN_BYTES_PER_INSTRUCTION, "voc.contains_any");
    if (!voc_kwmatch_find(kw->m, text, len, &hit)) {
        lua_pushnil(L);
        return 1;
    }
    lua_getiuservalue(L, 3, 1);
    lua_rawgeti(L, -1, (lua_Integer)hit + 1);
    return 1;
}

/* ---- durations and logging ---------------------------------------------------------- */

static int l_duration(lua_State *L)
{
    if (lua_type(L, 1) == LUA_TNUMBER) {
        lua_Number s = lua_tonumber(L, 1);
        luaL_argcheck(L, s >= 0 && isfinite(s), 1, "a duration cannot be negative");
        lua_settop(L, 1);
        return 1;
    }
    const char *text = luaL_checkstring(L, 1);
    double seconds;
    if (voc_parse_duration(text, &seconds) != 0)
        return luaL_error(L,
                          "voc.duration: '%s' is not a duration (use e.g. 45s, 90m, 24h, "
                          "2d, 1h30m)",
                          text);
    if (seconds == floor(seconds) && seconds < 9.0e15)
        lua_pushinteger(L, (lua_Integer)seconds);
    else
        lua_pushnumber(L, seconds);
    return 1;
}

/* ---- setup -------------------------------------------------------------------------- */

void voc_lua_open_voc(lua_State *L, struct voc_textnorm *tn)
{
    struct voc_lib *lib = lua_newuserdatauv(L, sizeof *lib, 0);
    memset(lib, 0, sizeof *lib);
    lib->tn = tn;
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, lib_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &LIB_KEY);
    int lib_idx = lua_gettop(L);

    memo_reset(L, lib);
    lua_newtable(L);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &BY_TABLE_KEY);
    lua_newtable(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &BY_CONTENT_KEY);

    luaL_newmetatable(L, KEYWORDS_MT);
    lua_pushcfunction(L, keywords_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, keywords_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable"); /* profiles cannot reach the __gc */
    lua_pop(L, 1);

    static const luaL_Reg funcs[] = {{"normalize", l_normalize},
                                     {"contains_any", l_contains_any},
                                     {"keywords", l_keywords},
                                     {"duration", l_duration},
                                     {NULL, NULL}};
    lua_createtable(L, 0, 5);
    lua_pushvalue(L, lib_idx);
    luaL_setfuncs(L, funcs, 1);
    lua_pushcfunction(L, voc_lua_print);
    lua_setfield(L, -2, "log");
    voc_lua_register_module(L, "voc");
    lua_settop(L, lib_idx - 1);
}
