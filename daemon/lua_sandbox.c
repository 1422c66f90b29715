#include "lua_sandbox.h"
#include "jsonutil.h"
#include "log.h"
#include "lua_pattern.h"

#include <ctype.h>
#include <errno.h>
#include <lauxlib.h>
#include <lualib.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* The count hook runs every HOOK_STEP instructions: often enough that a budget is exact to a
 * thousand instructions, rarely enough that the hook itself costs nothing measurable. */
#define HOOK_STEP 1000
/* The traceback handler may run when the state is at its memory limit; it gets this much
 * extra so the original message survives instead of "error in error handling". */
#define HANDLER_SLACK (64 * 1024)
/* Profile and module sources larger than this are refused (they are hand-written rules). */
#define MAX_SOURCE_BYTES ((size_t)4 << 20)
#define MAX_MODULE_NAME 128

/* Registry key of the table of modules loaded by require (and the preloaded libraries). */
static const char LOADED_KEY[] = "voc.loaded";
/* Marks a module whose chunk is running, to report circular requires. */
static const char loading_sentinel = 0;

enum abort_reason { ABORT_NONE, ABORT_INSTR, ABORT_MEM };

struct voc_lua {
    lua_State *L;
    size_t used;  /* bytes held by the state, plus memory charged by voc_lua_charge */
    size_t limit; /* the memory budget */
    uint64_t max_instructions;
    uint64_t instructions; /* counted so far in the current call */
    int hook_step;
    enum abort_reason abort; /* why the current call is being torn down */
    bool refused;            /* the allocator said no during the current call */
    bool in_handler;         /* the traceback handler is running: allow HANDLER_SLACK */
    unsigned log_lines;      /* print / voc.log in the current call */
    size_t log_bytes;
    uint64_t log_suppressed;
    char log_where[320]; /* "file:line" of the first suppressed line */
    char *profile_dir;
    char *lib_dir;
    struct voc_rules_stats *stats;
};

static struct voc_lua *lx_of(lua_State *L)
{
    return *(struct voc_lua **)lua_getextraspace(L);
}

/* ---- memory budget ------------------------------------------------------------------ */

static void *budget_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    struct voc_lua *lx = ud;
    /* When ptr is NULL, osize is a type tag, not a size. */
    size_t old = ptr ? osize : 0;
    if (nsize == 0) {
        free(ptr);
        lx->used -= old;
        return NULL;
    }
    if (nsize > old) {
        size_t limit = lx->limit + (lx->in_handler ? HANDLER_SLACK : 0);
        /* Refusing makes Lua run an emergency full collection and ask again, so garbage
         * never causes a false "memory limit exceeded". */
        if (lx->used + (nsize - old) > limit) {
            lx->refused = true;
            return NULL;
        }
    }
    void *p = realloc(ptr, nsize);
    if (!p)
        return NULL;
    lx->used = lx->used - old + nsize;
    /* Producing memory is work the count hook does not see (string.rep, table.concat ...):
     * charge it, so a loop over such calls still runs out of instructions. The hook notices
     * at its next step. */
    if (nsize > old)
        lx->instructions += (nsize - old) / VOC_LUA_ALLOC_BYTES_PER_INSTRUCTION;
    return p;
}

int voc_lua_charge(lua_State *L, ptrdiff_t delta)
{
    struct voc_lua *lx = lx_of(L);
    if (delta > 0 && lx->used + (size_t)delta > lx->limit)
        return -1;
    lx->used = (size_t)((ptrdiff_t)lx->used + delta);
    return 0;
}

int voc_lua_memory_error(lua_State *L)
{
    lx_of(L)->abort = ABORT_MEM;
    return luaL_error(L, "memory limit exceeded");
}

size_t voc_lua_memory(struct voc_lua *lx)
{
    return lx->used;
}

/* ---- instruction budget ------------------------------------------------------------- */

static const char *source_name(const lua_Debug *ar)
{
    /* "@path" names a file; anything else (load of a string) has only the short form. */
    return ar->source[0] == '@' ? ar->source + 1 : ar->short_src;
}

static void count_hook(lua_State *L, lua_Debug *ar)
{
    struct voc_lua *lx = lx_of(L);
    if (lx->abort != ABORT_INSTR) {
        lx->instructions += (uint64_t)lx->hook_step;
        if (lx->instructions < lx->max_instructions)
            return;
        lx->abort = ABORT_INSTR;
        /* From now on every instruction fails, so code that catches the error (a __close
         * handler, an xpcall handler) cannot keep running either. */
        lua_sethook(L, count_hook, LUA_MASKCOUNT, 1);
    }
    if (lua_getinfo(L, "Sl", ar) && ar->currentline > 0)
        lua_pushfstring(L, "%s:%d: instruction limit exceeded", source_name(ar), ar->currentline);
    else
        lua_pushliteral(L, "instruction limit exceeded");
    lua_error(L);
}

/* Push "file:line: " of the innermost Lua function on the stack, or "" (for messages about
 * a C function called from a profile, possibly through pcall). */
static void push_lua_where(lua_State *L)
{
    lua_Debug ar;
    for (int level = 1; lua_getstack(L, level, &ar); level++) {
        if (lua_getinfo(L, "Sl", &ar) && ar.currentline > 0) {
            lua_pushfstring(L, "%s:%d: ", source_name(&ar), ar.currentline);
            return;
        }
    }
    lua_pushliteral(L, "");
}

uint64_t voc_lua_instructions_left(lua_State *L)
{
    struct voc_lua *lx = lx_of(L);
    return lx->instructions < lx->max_instructions ? lx->max_instructions - lx->instructions : 0;
}

void voc_lua_charge_instructions(lua_State *L, uint64_t n, const char *why)
{
    struct voc_lua *lx = lx_of(L);
    if (lx->abort == ABORT_NONE && n < voc_lua_instructions_left(L)) {
        lx->instructions += n;
        return;
    }
    lx->instructions = lx->max_instructions;
    lx->abort = ABORT_INSTR;
    lua_sethook(L, count_hook, LUA_MASKCOUNT, 1); /* as the count hook does: no way on */
    push_lua_where(L);
    lua_pushfstring(L, "%sinstruction limit exceeded (%s)", lua_tostring(L, -1), why);
    lua_error(L);
}

/* ---- error messages ----------------------------------------------------------------- */

/* Does msg start with "file:123:"? */
static bool has_location(const char *msg)
{
    const char *colon = strchr(msg, ':');
    if (!colon || colon == msg || memchr(msg, '\n', (size_t)(colon - msg)))
        return false;
    const char *p = colon + 1;
    if (!isdigit((unsigned char)*p))
        return false;
    while (isdigit((unsigned char)*p))
        p++;
    return *p == ':';
}

char *voc_lua_expand_location(const char *msg, const char *path)
{
    /* Lua keeps only the last LUA_IDSIZE bytes of a long chunk name, behind "...". */
    if (strncmp(msg, "...", 3) == 0 && has_location(msg)) {
        const char *tail = msg + 3;
        size_t tail_len = (size_t)(strchr(tail, ':') - tail);
        size_t path_len = strlen(path);
        if (tail_len <= path_len && memcmp(path + path_len - tail_len, tail, tail_len) == 0) {
            size_t rest = strlen(tail + tail_len);
            char *out = malloc(path_len + rest + 1);
            if (out) {
                memcpy(out, path, path_len);
                memcpy(out + path_len, tail + tail_len, rest + 1);
            }
            return out;
        }
    }
    return strdup(msg);
}

/* Traceback handler: make sure the message starts with the full "file:line:" of the Lua
 * code that failed, then append the traceback. */
static int message_handler(lua_State *L)
{
    struct voc_lua *lx = lx_of(L);
    lx->in_handler = true;
    const char *msg = lua_tostring(L, 1);
    if (!msg) /* no __tostring: that would run profile code inside the handler */
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    lua_Debug ar;
    bool located = has_location(msg);
    for (int level = 1; lua_getstack(L, level, &ar); level++) {
        if (!lua_getinfo(L, "Sl", &ar) || ar.currentline <= 0 || ar.source[0] != '@')
            continue;
        if (!located) {
            msg = lua_pushfstring(L, "%s:%d: %s", ar.source + 1, ar.currentline, msg);
            break;
        }
        if (strncmp(msg, "...", 3) != 0)
            break;
        char *full = voc_lua_expand_location(msg, ar.source + 1);
        if (full && strcmp(full, msg) != 0) {
            msg = lua_pushstring(L, full);
            free(full);
            break;
        }
        free(full);
    }
    luaL_traceback(L, L, msg, 1);
    lx->in_handler = false;
    return 1;
}

/* Out of budget? Lua's core reports LUA_ERRMEM, but the auxiliary library's buffers
 * (string.rep, table.concat, gsub ...) call the allocator themselves and raise an ordinary
 * error "not enough memory" (the error object on top of the stack). */
static bool memory_failure(lua_State *L, struct voc_lua *lx, int status)
{
    if (status == LUA_ERRMEM)
        return true;
    if (!lx->refused || lua_type(L, -1) != LUA_TSTRING)
        return false;
    /* By the time the wrapper sees it, the handler has added a location and a traceback. */
    const char *msg = lua_tostring(L, -1);
    const char *hit = strstr(msg, "not enough memory");
    return hit && !memchr(msg, '\n', (size_t)(hit - msg));
}

/* ---- the one wrapper ---------------------------------------------------------------- */

static void bump(_Atomic uint64_t *counter)
{
    atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
}

static char *format_failure(const char *where, const char *msg)
{
    size_t len = (where ? strlen(where) + 2 : 0) + strlen(msg) + 1;
    char *out = malloc(len);
    if (out)
        snprintf(out, len, "%s%s%s", where ? where : "", where ? ": " : "", msg);
    return out;
}

int voc_lua_call(struct voc_lua *lx, lua_CFunction fn, void *ud, const char *where, char **err)
{
    lua_State *L = lx->L;
    if (err)
        *err = NULL;
    int base = lua_gettop(L);
    lx->abort = ABORT_NONE;
    lx->refused = false;
    lx->instructions = 0;
    lx->in_handler = false;
    lx->log_lines = 0;
    lx->log_bytes = 0;
    lx->log_suppressed = 0;
    /* Setting the hook also resets its countdown, so each call gets the whole budget. */
    lua_sethook(L, count_hook, LUA_MASKCOUNT, lx->hook_step);
    lua_pushcfunction(L, message_handler);
    lua_pushcfunction(L, fn);
    lua_pushlightuserdata(L, ud);
    int status = lua_pcall(L, 1, 0, base + 1);
    /* No hook between calls: nothing runs then, and a hooked VM is slower. */
    lua_sethook(L, NULL, 0, 0);
    lx->in_handler = false;
    if (lx->log_suppressed)
        voc_info("rules",
                 "%s: suppressed %llu more log lines of this call (at most %d lines and %d bytes "
                 "per call)",
                 lx->log_where, (unsigned long long)lx->log_suppressed, VOC_LUA_LOG_MAX_LINES,
                 VOC_LUA_LOG_MAX_BYTES);
    if (lx->stats)
        bump(&lx->stats->calls);
    if (status == LUA_OK) {
        lua_settop(L, base);
        return VOC_LUA_OK;
    }

    const char *raw = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    /* The first line is the message; the rest is the handler's traceback. */
    size_t first_len = raw ? strcspn(raw, "\n") : 0;
    char first[1024];
    snprintf(first, sizeof first, "%.*s", (int)(first_len < sizeof first ? first_len : 1023),
             raw ? raw : "");
    int result;
    char *msg = NULL;
    if (lx->abort == ABORT_INSTR) {
        result = VOC_LUA_INSTR_LIMIT;
        if (strstr(first, "instruction limit exceeded") && has_location(first))
            msg = strdup(first);
        else
            msg = format_failure(where, "instruction limit exceeded");
        if (lx->stats)
            bump(&lx->stats->instr_limit);
    } else if (lx->abort == ABORT_MEM || memory_failure(L, lx, status)) {
        result = VOC_LUA_MEM_LIMIT;
        char text[96];
        snprintf(text, sizeof text, "memory limit exceeded (%zu KiB)", lx->limit / 1024);
        msg = format_failure(where, text);
        if (lx->stats)
            bump(&lx->stats->memory_limit);
    } else {
        result = VOC_LUA_ERROR;
        if (status == LUA_ERRERR)
            msg = format_failure(where, "error while handling an error");
        else if (has_location(first))
            msg = strdup(first);
        else
            msg = format_failure(where, first[0] ? first : "unknown error");
        if (lx->stats)
            bump(&lx->stats->errors);
    }
    if (raw && raw[first_len] == '\n')
        voc_debug("rules", "lua %s", raw);
    lua_settop(L, base);
    /* A memory stop leaves the garbage of the failed call; collect it now so the next call
     * starts with the whole budget. */
    if (result == VOC_LUA_MEM_LIMIT)
        lua_gc(L, LUA_GCCOLLECT);
    if (err)
        *err = msg;
    else
        free(msg);
    return result;
}

/* ---- sandboxed base functions ------------------------------------------------------- */

/* A budget overrun caught by a profile's pcall is re-raised: a runaway rule must not be
 * able to swallow its own stop. Memory errors become a stop too. */
static void propagate_abort(lua_State *L, int status)
{
    struct voc_lua *lx = lx_of(L);
    if (lx->abort == ABORT_NONE && memory_failure(L, lx, status))
        lx->abort = ABORT_MEM;
    if (lx->abort != ABORT_NONE)
        lua_error(L);
}

static int sandbox_pcall(lua_State *L)
{
    luaL_checkany(L, 1);
    int status = lua_pcall(L, lua_gettop(L) - 1, LUA_MULTRET, 0);
    if (status != LUA_OK) {
        propagate_abort(L, status);
        lua_pushboolean(L, 0);
        lua_insert(L, -2);
        return 2;
    }
    lua_pushboolean(L, 1);
    lua_insert(L, 1);
    return lua_gettop(L);
}

/* The profile's xpcall handler, called through this so that it is skipped for a budget
 * stop: Lua runs message handlers before unwinding, and for an error raised by the count hook
 * that is while hooks are still switched off, so a looping handler would never be stopped. */
static int xpcall_handler(lua_State *L)
{
    if (lx_of(L)->abort != ABORT_NONE)
        return 1;
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    return 1;
}

static int sandbox_xpcall(lua_State *L)
{
    int n = lua_gettop(L);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_pushvalue(L, 2);
    lua_pushcclosure(L, xpcall_handler, 1);
    lua_replace(L, 2);
    lua_pushboolean(L, 1);
    lua_pushvalue(L, 1);
    lua_rotate(L, 3, 2); /* f, handler, true, f, args... */
    int status = lua_pcall(L, n - 2, LUA_MULTRET, 2);
    if (status != LUA_OK) {
        propagate_abort(L, status);
        lua_pushboolean(L, 0);
        lua_insert(L, -2);
        return 2;
    }
    return lua_gettop(L) - 2;
}

static int sandbox_setmetatable(lua_State *L)
{
    int t = lua_type(L, 2);
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_argexpected(L, t == LUA_TNIL || t == LUA_TTABLE, 2, "nil or table");
    if (t == LUA_TTABLE) {
        lua_pushliteral(L, "__gc");
        if (lua_rawget(L, 2) != LUA_TNIL)
            return luaL_error(L, "__gc metamethods are not allowed in profiles");
        lua_pop(L, 1);
    }
    if (luaL_getmetafield(L, 1, "__metatable") != LUA_TNIL)
        return luaL_error(L, "cannot change a protected metatable");
    lua_settop(L, 2);
    lua_setmetatable(L, 1);
    return 1;
}

int voc_lua_print(lua_State *L)
{
    struct voc_lua *lx = lx_of(L);
    if (voc_log_get_level() > VOC_LOG_INFO)
        return 0;
    lua_Debug ar;
    bool located = lua_getstack(L, 1, &ar) && lua_getinfo(L, "Sl", &ar) && ar.currentline > 0;
    /* A rule that logs in a loop must not flood the daemon's log: a few lines per call. */
    if (lx->log_lines >= VOC_LUA_LOG_MAX_LINES || lx->log_bytes >= VOC_LUA_LOG_MAX_BYTES) {
        if (lx->log_suppressed++ == 0)
            snprintf(lx->log_where, sizeof lx->log_where, "%s:%d", located ? source_name(&ar) : "?",
                     located ? ar.currentline : 0);
        return 0;
    }
    int n = lua_gettop(L);
    char line[VOC_LUA_LOG_LINE_MAX + 1];
    size_t used = 0, dropped = 0;
    for (int i = 1; i <= n; i++) {
        size_t len;
        const char *text = luaL_tolstring(L, i, &len);
        size_t room = VOC_LUA_LOG_LINE_MAX - used;
        if (i > 1 && room > 0) {
            line[used++] = '\t';
            room--;
        }
        size_t take = voc_utf8_cut(text, len, room);
        memcpy(line + used, text, take);
        used += take;
        dropped += len - take;
        lua_pop(L, 1);
    }
    line[used] = '\0';
    lx->log_lines++;
    lx->log_bytes += used;
    char more[48] = "";
    if (dropped)
        snprintf(more, sizeof more, " [%zu more bytes]", dropped);
    if (located)
        voc_info("rules", "%s:%d: %s%s", source_name(&ar), ar.currentline, line, more);
    else
        voc_info("rules", "%s%s", line, more);
    return 0;
}

static int sandbox_load(lua_State *L)
{
    size_t len;
    if (lua_type(L, 1) != LUA_TSTRING) {
        lua_pushnil(L);
        lua_pushliteral(L, "load: only string chunks are allowed in profiles");
        return 2;
    }
    const char *chunk = lua_tolstring(L, 1, &len);
    const char *chunkname = luaL_optstring(L, 2, "=(load)");
    const char *mode = luaL_optstring(L, 3, "t");
    /* Bytecode skips the compiler's checks and can crash the VM: never, whatever the mode. */
    if (strchr(mode, 'b') || (len > 0 && chunk[0] == LUA_SIGNATURE[0])) {
        lua_pushnil(L);
        lua_pushliteral(L, "load: binary chunks are not allowed in profiles");
        return 2;
    }
    bool custom_env = !lua_isnone(L, 4);
    int status = luaL_loadbufferx(L, chunk, len, chunkname, "t");
    if (status == LUA_ERRMEM)
        propagate_abort(L, status);
    if (status != LUA_OK) {
        lua_pushnil(L);
        lua_insert(L, -2);
        return 2;
    }
    if (custom_env) {
        lua_pushvalue(L, 4);
        if (!lua_setupvalue(L, -2, 1))
            lua_pop(L, 1);
    }
    return 1;
}

/* ---- pattern functions -------------------------------------------------------------- */

enum pattern_fn { PAT_FIND, PAT_MATCH, PAT_GMATCH, PAT_GSUB };
static const char *const pattern_fn_names[] = {"string.find", "string.match", "string.gmatch",
                                               "string.gsub"};

/* Lua's reading of an init argument: negative counts from the end, 0 is 1. */
static size_t start_offset(lua_Integer init, size_t len)
{
    if (init > 0)
        return (size_t)init - 1 < len ? (size_t)init - 1 : len;
    if (init == 0 || (size_t) - (init + 1) >= len)
        return 0;
    return len - (size_t)-init;
}

/* Charge `steps` of matching, in instructions (rounded up: nothing is free). */
static void charge_steps(lua_State *L, double steps, enum pattern_fn fn)
{
    double n = steps / VOC_LUA_PATTERN_STEPS_PER_INSTRUCTION + 1;
    voc_lua_charge_instructions(L, n >= 1.8e19 ? UINT64_MAX : (uint64_t)n, pattern_fn_names[fn]);
}

/* The original library function is upvalue 1 (and string.find upvalue 2). Before calling it,
 * estimate the worst case (lua_pattern.h); refuse what cannot fit in the budget; afterwards
 * charge it (for find and match, only the part up to where the match was found). */
static int guarded_pattern(lua_State *L, enum pattern_fn fn)
{
    size_t n, m;
    const char *s = luaL_checklstring(L, 1, &n);
    const char *p = luaL_checklstring(L, 2, &m);
    size_t off = fn == PAT_GSUB ? 0 : start_offset(luaL_optinteger(L, 3, 1), n);
    const char *subject = s + off;
    size_t len = n - off;
    bool plain = (fn == PAT_FIND && lua_toboolean(L, 4)) || !voc_pattern_has_specials(p, m);
    const char *name = pattern_fn_names[fn];
    if (!plain && len > VOC_LUA_MAX_PATTERN_SUBJECT)
        return luaL_error(L,
                          "%s: a pattern with special characters on a text of %d bytes "
                          "(at most %d); look words up with voc.contains_any or plain "
                          "string.find(text, word, 1, true)",
                          name, (int)(len > INT32_MAX ? INT32_MAX : len),
                          (int)VOC_LUA_MAX_PATTERN_SUBJECT);
    double left = (double)voc_lua_instructions_left(L) * VOC_LUA_PATTERN_STEPS_PER_INSTRUCTION;
    double cost;
    if (plain) {
        voc_pattern_plain_cost(subject, len, p, m, &cost);
    } else {
        char err[128];
        if (voc_pattern_cost(subject, len, p, m, fn != PAT_GMATCH, left, &cost, err, sizeof err) !=
            0)
            return luaL_error(L, "%s", err);
    }
    if (cost > left) {
        char why[200];
        snprintf(why, sizeof why,
                 "%s: up to %.3g matching steps on a text of %zu bytes; anchor the pattern "
                 "with ^, match a set like [^,]* instead of .-, or use voc.contains_any",
                 name, cost, len);
        voc_lua_charge_instructions(L, UINT64_MAX, why);
    }

    int nargs = lua_gettop(L);
    if (fn == PAT_GMATCH || fn == PAT_GSUB) {
        /* Charged in full: both go over the whole text. */
        charge_steps(L, cost, fn);
        lua_pushvalue(L, lua_upvalueindex(1));
        lua_insert(L, 1);
        lua_call(L, nargs, LUA_MULTRET);
        return lua_gettop(L);
    }
    /* find, and match as a find: the position of the match tells how much was tried. */
    lua_settop(L, fn == PAT_MATCH ? (nargs < 3 ? nargs : 3) : nargs);
    lua_pushvalue(L, lua_upvalueindex(fn == PAT_MATCH ? 2 : 1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    int nres = lua_gettop(L);
    if (lua_type(L, 1) != LUA_TNUMBER) {
        charge_steps(L, cost, fn);
        return nres;
    }
    size_t at = (size_t)lua_tointeger(L, 1) - 1; /* where the match starts */
    double tried = at >= off ? (double)(at - off) + 1 : 1;
    charge_steps(L, cost * tried / ((double)len + 1), fn);
    if (fn == PAT_FIND)
        return nres;
    if (nres > 2)
        return nres - 2; /* the captures */
    size_t end = (size_t)lua_tointeger(L, 2);
    lua_pushlstring(L, s + at, end - at); /* no captures: the whole match */
    return 1;
}

static int guarded_find(lua_State *L)
{
    return guarded_pattern(L, PAT_FIND);
}

static int guarded_match(lua_State *L)
{
    return guarded_pattern(L, PAT_MATCH);
}

static int guarded_gmatch(lua_State *L)
{
    return guarded_pattern(L, PAT_GMATCH);
}

static int guarded_gsub(lua_State *L)
{
    return guarded_pattern(L, PAT_GSUB);
}

/* Replace the pattern functions of the string library (at idx) with the guarded ones. */
static void guard_pattern_functions(lua_State *L, int idx)
{
    static const struct {
        const char *name;
        lua_CFunction fn;
    } guarded[] = {{"find", guarded_find},
                   {"match", guarded_match},
                   {"gmatch", guarded_gmatch},
                   {"gsub", guarded_gsub}};
    idx = lua_absindex(L, idx);
    lua_getfield(L, idx, "find");
    int find = lua_gettop(L);
    for (size_t i = 0; i < sizeof guarded / sizeof guarded[0]; i++) {
        lua_getfield(L, idx, guarded[i].name);
        lua_pushvalue(L, find);
        lua_pushcclosure(L, guarded[i].fn, 2);
        lua_setfield(L, idx, guarded[i].name);
    }
    lua_pop(L, 1);
}

/* ---- other library functions that loop in C ---------------------------------------- */

/* Library functions whose C loop is as long as their arguments say, without producing
 * memory the allocator would charge: table.move(a, 1, 1e9, 1) is a billion steps in one
 * call. Each is charged its length first (one instruction per element, n log n for sort, one
 * per 4 bytes of text), and refused like a runaway loop when that is more than is left. */
enum loop_cost {
    COST_MOVE,   /* table.move(a1, f, e, t [,a2]): e - f + 1 */
    COST_INSERT, /* table.insert(t, [pos,] v): the elements after pos */
    COST_REMOVE, /* table.remove(t [, pos]): the elements after pos */
    COST_CONCAT, /* table.concat(t, sep, i, j): j - i + 1 */
    COST_UNPACK, /* table.unpack(t, i, j): j - i + 1 */
    COST_SORT,   /* table.sort(t [, comp]): n log n comparisons */
    COST_UTF8,   /* utf8.len / codepoint / offset (s, ...): the text */
};

static double arg_integer(lua_State *L, int idx, double fallback)
{
    int isnum = 0;
    lua_Integer v = lua_tointegerx(L, idx, &isnum);
    return isnum ? (double)v : fallback;
}

static double loop_length(lua_State *L, enum loop_cost kind)
{
    /* The length as the library sees it, __len included (a __len of 1e9 is the point). */
    double len = lua_type(L, 1) == LUA_TTABLE ? (double)luaL_len(L, 1) : 0;
    double n = 0;
    switch (kind) {
    case COST_MOVE:
        n = arg_integer(L, 3, 0) - arg_integer(L, 2, 1) + 1;
        break;
    case COST_INSERT: /* appending (two arguments) moves nothing */
        n = lua_gettop(L) == 3 ? len - arg_integer(L, 2, len + 1) + 1 : 1;
        break;
    case COST_REMOVE:
        n = lua_gettop(L) >= 2 ? len - arg_integer(L, 2, len) : 1;
        break;
    case COST_CONCAT:
        n = arg_integer(L, 4, len) - arg_integer(L, 3, 1) + 1;
        break;
    case COST_UNPACK:
        n = arg_integer(L, 3, len) - arg_integer(L, 2, 1) + 1;
        break;
    case COST_SORT:
        n = len > 1 ? len * log2(len) : 1;
        break;
    case COST_UTF8:
        n = lua_type(L, 1) == LUA_TSTRING ? (double)lua_rawlen(L, 1) / 4 : 1;
        break;
    }
    return n > 1 ? n : 1;
}

/* Upvalues: the original function, the cost kind, the name for messages. */
static int charged_call(lua_State *L)
{
    enum loop_cost kind = (enum loop_cost)lua_tointeger(L, lua_upvalueindex(2));
    double n = loop_length(L, kind);
    voc_lua_charge_instructions(L, n >= 1.8e19 ? UINT64_MAX : (uint64_t)n,
                                lua_tostring(L, lua_upvalueindex(3)));
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

static void charge_library_loops(lua_State *L, int idx, const char *lib)
{
    static const struct {
        const char *lib, *name;
        enum loop_cost kind;
    } charged[] = {
        {"table", "move", COST_MOVE},     {"table", "insert", COST_INSERT},
        {"table", "remove", COST_REMOVE}, {"table", "concat", COST_CONCAT},
        {"table", "unpack", COST_UNPACK}, {"table", "sort", COST_SORT},
        {"utf8", "len", COST_UTF8},       {"utf8", "codepoint", COST_UTF8},
        {"utf8", "offset", COST_UTF8},
    };
    idx = lua_absindex(L, idx);
    for (size_t i = 0; i < sizeof charged / sizeof charged[0]; i++) {
        if (strcmp(charged[i].lib, lib) != 0)
            continue;
        lua_getfield(L, idx, charged[i].name);
        lua_pushinteger(L, charged[i].kind);
        lua_pushfstring(L, "%s.%s", lib, charged[i].name);
        lua_pushcclosure(L, charged_call, 3);
        lua_setfield(L, idx, charged[i].name);
    }
}

/* ---- files and require -------------------------------------------------------------- */

void voc_lua_push_file(lua_State *L, const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        luaL_error(L, "cannot open %s: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        luaL_error(L, "cannot load %s: not a regular file", path);
    if ((size_t)st.st_size > MAX_SOURCE_BYTES)
        luaL_error(L, "cannot load %s: larger than %d MiB", path, (int)(MAX_SOURCE_BYTES >> 20));
    /* The buffer is a userdata so that a Lua error anywhere below frees it. */
    size_t size = (size_t)st.st_size;
    char *buf = lua_newuserdatauv(L, size + 1, 0);
    FILE *f = fopen(path, "rb");
    if (!f)
        luaL_error(L, "cannot open %s: %s", path, strerror(errno));
    size_t got = fread(buf, 1, size + 1, f);
    int read_error = ferror(f);
    fclose(f);
    if (read_error)
        luaL_error(L, "cannot read %s", path);
    if (got != size)
        luaL_error(L, "cannot load %s: it changed while being read", path);
    if (size > 0 && buf[0] == LUA_SIGNATURE[0])
        luaL_error(L,
                   "cannot load %s: it is precompiled Lua (bytecode), which profiles may not "
                   "use; give the source file",
                   path);
    lua_pushfstring(L, "@%s", path);
    int status = luaL_loadbufferx(L, buf, size, lua_tostring(L, -1), "t");
    if (status == LUA_ERRMEM)
        propagate_abort(L, status);
    if (status != LUA_OK) {
        char *full = voc_lua_expand_location(lua_tostring(L, -1), path);
        if (full) {
            lua_pushstring(L, full);
            free(full);
        }
        lua_error(L);
    }
    /* Leave only the function. */
    lua_replace(L, -3);
    lua_pop(L, 1);
}

static bool valid_module_name(const char *name, size_t len)
{
    if (len == 0 || len > MAX_MODULE_NAME || name[0] == '.' || name[len - 1] == '.')
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (!(isalnum(c) || c == '_' || c == '.'))
            return false;
        if (c == '.' && name[i + 1] == '.')
            return false;
    }
    return true;
}

static bool withheld_library(const char *name)
{
    static const char *const withheld[] = {"io",        "os",  "debug", "package",
                                           "coroutine", "ffi", "jit"};
    for (size_t i = 0; i < sizeof withheld / sizeof withheld[0]; i++)
        if (strcmp(name, withheld[i]) == 0)
            return true;
    return false;
}

/* Pushes "dir/a/b.lua" for module "a.b" and returns whether that is a regular file. */
static bool push_module_path(lua_State *L, const char *dir, const char *name)
{
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luaL_addstring(&b, dir);
    luaL_addchar(&b, '/');
    for (const char *p = name; *p; p++)
        luaL_addchar(&b, *p == '.' ? '/' : *p);
    luaL_addstring(&b, ".lua");
    luaL_pushresult(&b);
    struct stat st;
    return stat(lua_tostring(L, -1), &st) == 0 && S_ISREG(st.st_mode);
}

static int sandbox_require(lua_State *L)
{
    struct voc_lua *lx = lx_of(L);
    size_t len;
    const char *name = luaL_checklstring(L, 1, &len);
    lua_settop(L, 1);
    lua_getfield(L, LUA_REGISTRYINDEX, LOADED_KEY); /* 2 */
    lua_pushvalue(L, 1);
    if (lua_rawget(L, 2) != LUA_TNIL) {
        if (lua_touserdata(L, -1) == (void *)&loading_sentinel)
            return luaL_error(L, "require: circular require of '%s'", name);
        return 1;
    }
    lua_pop(L, 1);
    if (!valid_module_name(name, len))
        return luaL_error(L, "require: bad module name '%s' (letters, digits, '_' and '.')", name);
    if (withheld_library(name))
        return luaL_error(L,
                          "require: module '%s' is not available in profiles (the sandbox "
                          "offers string, table, math, utf8 and voc)",
                          name);
    bool found = push_module_path(L, lx->profile_dir, name); /* 3 */
    if (!found && lx->lib_dir) {
        found = push_module_path(L, lx->lib_dir, name); /* 4 */
        if (!found)
            return luaL_error(L, "require: module '%s' not found (no %s, no %s)", name,
                              lua_tostring(L, 3), lua_tostring(L, 4));
    } else if (!found) {
        return luaL_error(L, "require: module '%s' not found (no %s)", name, lua_tostring(L, 3));
    }
    int path = lua_gettop(L);

    lua_pushvalue(L, 1);
    lua_pushlightuserdata(L, (void *)&loading_sentinel);
    lua_rawset(L, 2);

    voc_lua_push_file(L, lua_tostring(L, path));
    lua_pushvalue(L, 1);
    lua_pushvalue(L, path);
    int status = lua_pcall(L, 2, 1, 0);
    if (status != LUA_OK) {
        /* Forget the half-loaded module so a later require reports the real error again. */
        lua_pushvalue(L, 1);
        lua_pushnil(L);
        lua_rawset(L, 2);
        propagate_abort(L, status);
        lua_error(L);
    }
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_pushboolean(L, 1);
    }
    lua_pushvalue(L, 1);
    lua_pushvalue(L, -2);
    lua_rawset(L, 2);
    return 1;
}

void voc_lua_register_module(lua_State *L, const char *name)
{
    lua_getfield(L, LUA_REGISTRYINDEX, LOADED_KEY);
    lua_pushvalue(L, -2);
    lua_setfield(L, -2, name);
    lua_pop(L, 1);
    lua_pushglobaltable(L);
    lua_insert(L, -2);
    lua_setfield(L, -2, name);
    lua_pop(L, 1);
}

/* ---- state setup -------------------------------------------------------------------- */

static int setup_sandbox(lua_State *L)
{
    /* The base library fills the state's original global table; we only copy the allowed
     * functions out of it and then replace it, so the rest is unreachable garbage. */
    luaL_requiref(L, "_G", luaopen_base, 0);
    int host = lua_gettop(L);
    lua_newtable(L);
    int env = lua_gettop(L);
    static const char *const allowed[] = {
        "assert", "error",        "ipairs",   "next",   "pairs",  "select", "tonumber", "tostring",
        "type",   "getmetatable", "rawequal", "rawget", "rawlen", "rawset", "_VERSION"};
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++) {
        lua_getfield(L, host, allowed[i]);
        lua_setfield(L, env, allowed[i]);
    }
    static const luaL_Reg own[] = {{"pcall", sandbox_pcall},
                                   {"xpcall", sandbox_xpcall},
                                   {"setmetatable", sandbox_setmetatable},
                                   {"print", voc_lua_print},
                                   {"load", sandbox_load},
                                   {"require", sandbox_require},
                                   {NULL, NULL}};
    luaL_setfuncs(L, own, 0);
    lua_pushvalue(L, env);
    lua_setfield(L, env, "_G");

    lua_newtable(L);
    int loaded = lua_gettop(L);
    static const struct {
        const char *name;
        lua_CFunction open;
    } libs[] = {{"string", luaopen_string},
                {"table", luaopen_table},
                {"math", luaopen_math},
                {"utf8", luaopen_utf8}};
    for (size_t i = 0; i < sizeof libs / sizeof libs[0]; i++) {
        luaL_requiref(L, libs[i].name, libs[i].open, 0);
        if (strcmp(libs[i].name, "string") == 0) {
            /* No bytecode comes out of the sandbox (and none goes in: load is text-only). */
            lua_pushnil(L);
            lua_setfield(L, -2, "dump");
            /* The same table is the strings' __index, so s:find(...) is guarded too. */
            guard_pattern_functions(L, -1);
        }
        charge_library_loops(L, -1, libs[i].name);
        lua_pushvalue(L, -1);
        lua_setfield(L, loaded, libs[i].name);
        lua_setfield(L, env, libs[i].name);
    }
    lua_setfield(L, LUA_REGISTRYINDEX, LOADED_KEY);

    /* The sandbox becomes the global table: every chunk compiled from now on (profile,
     * modules, load) gets it as _ENV, and the host table above is dropped. */
    lua_pushvalue(L, env);
    lua_rawseti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
    lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_pushvalue(L, env);
    lua_setfield(L, -2, "_G");
    return 0;
}

static int panic_handler(lua_State *L)
{
    /* Every entry into Lua is protected; reaching this is a bug in vocd. */
    voc_error("rules", "unprotected Lua error: %s",
              lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "?");
    abort();
}

int voc_lua_new(const struct voc_lua_config *cfg, struct voc_lua **out, char **err)
{
    *out = NULL;
    if (err)
        *err = NULL;
    struct voc_lua *lx = calloc(1, sizeof *lx);
    if (!lx)
        goto nomem;
    lx->limit = cfg->max_memory ? cfg->max_memory : VOC_LUA_DEFAULT_MAX_MEMORY;
    lx->max_instructions =
        cfg->max_instructions ? cfg->max_instructions : VOC_LUA_DEFAULT_MAX_INSTRUCTIONS;
    /* Small budgets (tests) still get a precise stop. */
    lx->hook_step =
        lx->max_instructions < 10 * HOOK_STEP ? (int)(lx->max_instructions / 10) : HOOK_STEP;
    if (lx->hook_step < 1)
        lx->hook_step = 1;
    lx->stats = cfg->stats;
    lx->profile_dir = strdup(cfg->profile_dir ? cfg->profile_dir : ".");
    lx->lib_dir = cfg->lib_dir ? strdup(cfg->lib_dir) : NULL;
    if (!lx->profile_dir || (cfg->lib_dir && !lx->lib_dir))
        goto nomem;
    lx->L = lua_newstate(budget_alloc, lx);
    if (!lx->L) {
        if (err)
            *err = strdup("cannot create a Lua state (memory limit too small?)");
        voc_lua_free(lx);
        return -1;
    }
    *(struct voc_lua **)lua_getextraspace(lx->L) = lx;
    lua_atpanic(lx->L, panic_handler);
    /* Rules make many short-lived tables per call (case views, results). */
    lua_gc(lx->L, LUA_GCGEN, 0, 0);
    char *why = NULL;
    if (voc_lua_call(lx, setup_sandbox, NULL, "sandbox setup", &why) != VOC_LUA_OK) {
        if (err)
            *err = why;
        else
            free(why);
        voc_lua_free(lx);
        return -1;
    }
    *out = lx;
    return 0;
nomem:
    voc_lua_free(lx);
    if (err)
        *err = strdup("out of memory");
    return -1;
}

void voc_lua_free(struct voc_lua *lx)
{
    if (!lx)
        return;
    if (lx->L)
        lua_close(lx->L);
    free(lx->profile_dir);
    free(lx->lib_dir);
    free(lx);
}

lua_State *voc_lua_state(struct voc_lua *lx)
{
    return lx->L;
}
