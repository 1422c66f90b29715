/* A sandboxed Lua 5.4 state for one profile, and the one wrapper every call into it goes
 * through.
 *
 * Sandbox: an allow-list. The profile's globals (_ENV, also the state's global table) hold
 * only assert error ipairs next pairs pcall xpcall select tonumber tostring type
 * setmetatable getmetatable rawequal rawget rawlen rawset print load require _G _VERSION
 * and the string (without dump), table, math and utf8 libraries. Nothing else is ever
 * loaded into the state, so there is no host global to reach by metatable tricks.
 *   - print writes "INFO rules: file:line: ..." through voc_log.
 *   - load takes string chunks in text mode only; binary chunks are refused.
 *   - require(name) loads `name` ([A-Za-z0-9_.], dots = folders) from the profile's folder,
 *     then from lib_dir, in text mode, once; io, os, debug, package ... do not exist.
 *   - setmetatable refuses metatables with __gc: finalizers would run outside any budget.
 *   - string.find/match/gmatch/gsub are charged their worst case first (see below).
 *   - pcall/xpcall cannot swallow a budget overrun: it is re-raised up to the wrapper.
 *
 * Budgets: a count hook stops a call after max_instructions VM instructions, and the
 * state's allocator refuses to grow the state beyond max_memory. A call stopped by either
 * leaves the state usable for the next call.
 *
 * A voc_lua is used by one thread at a time.
 */
#ifndef VOC_LUA_SANDBOX_H
#define VOC_LUA_SANDBOX_H

#include <lua.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rules.h"

#define VOC_LUA_DEFAULT_MAX_INSTRUCTIONS 10000000u
#define VOC_LUA_DEFAULT_MAX_MEMORY ((size_t)64 << 20)

/* Work done in C, where the count hook does not reach, is charged to the instruction budget
 * (docs/lua-api.md, "The sandbox and its limits"):
 *   - growing the state's memory: one instruction per VOC_LUA_ALLOC_BYTES_PER_INSTRUCTION
 *     bytes (string.rep, table.concat, gsub results ... all allocate what they produce);
 *   - string.find / match / gmatch / gsub: their worst-case matching steps (lua_pattern.h),
 *     one instruction per VOC_LUA_PATTERN_STEPS_PER_INSTRUCTION steps. A call whose worst case
 *     exceeds what is left of the budget is stopped before it starts, and a pattern with
 *     special characters is refused outright on a text longer than VOC_LUA_MAX_PATTERN_SUBJECT;
 *   - table.move / insert / remove / concat / unpack / sort and utf8.len / codepoint / offset:
 *     the elements or bytes they will go over, before they start.
 * print / voc.log write at most VOC_LUA_LOG_MAX_LINES lines and VOC_LUA_LOG_MAX_BYTES bytes
 * per call, each line cut at VOC_LUA_LOG_LINE_MAX bytes; what is held back is counted in one
 * "suppressed N log lines" line when the call ends. */
#define VOC_LUA_ALLOC_BYTES_PER_INSTRUCTION 16
#define VOC_LUA_PATTERN_STEPS_PER_INSTRUCTION 4
#define VOC_LUA_MAX_PATTERN_SUBJECT ((size_t)1 << 20)
#define VOC_LUA_LOG_MAX_LINES 32
#define VOC_LUA_LOG_MAX_BYTES 8192
#define VOC_LUA_LOG_LINE_MAX 1024

struct voc_lua;

struct voc_lua_config {
    uint64_t max_instructions;     /* per call; 0 = VOC_LUA_DEFAULT_MAX_INSTRUCTIONS */
    size_t max_memory;             /* whole state; 0 = VOC_LUA_DEFAULT_MAX_MEMORY */
    const char *profile_dir;       /* first folder `require` searches */
    const char *lib_dir;           /* second folder, may be NULL */
    struct voc_rules_stats *stats; /* counters to bump, may be NULL */
};

enum voc_lua_status {
    VOC_LUA_OK = 0,
    VOC_LUA_ERROR = -1,       /* error(), runtime error, or an error the caller raised */
    VOC_LUA_INSTR_LIMIT = -2, /* stopped by the instruction budget */
    VOC_LUA_MEM_LIMIT = -3,   /* stopped by the memory budget */
};

/* Create the state and its sandboxed globals. Returns 0, or -1 with *err (malloc'd). */
int voc_lua_new(const struct voc_lua_config *cfg, struct voc_lua **out, char **err);
void voc_lua_free(struct voc_lua *lx);
lua_State *voc_lua_state(struct voc_lua *lx);

/* The one protected call. Runs fn(L) with `ud` as its only argument (a light userdata) under
 * a traceback message handler and fresh instruction budget; fn pushes the Lua function,
 * calls it with lua_call and takes its results, raising Lua errors as it likes. Afterwards
 * the stack is back where it was. On failure *err (malloc'd) is "file:line: message"; when
 * the error carries no location (a memory stop, error(x, 0) ...), `where` ("file:line" of
 * the hook being run, may be NULL) is used. Returns a voc_lua_status; the stats count it. */
int voc_lua_call(struct voc_lua *lx, lua_CFunction fn, void *ud, const char *where, char **err);

/* Compile a Lua file as a text chunk whose _ENV is the sandbox; chunkname "@path", so
 * messages read "path:line: ...". Pushes the function inside a voc_lua_call, or raises. */
void voc_lua_push_file(lua_State *L, const char *path);

/* Make the value on top of the stack (popped) a global `name` of the sandbox and the result
 * of require(name). Call inside a voc_lua_call. */
void voc_lua_register_module(lua_State *L, const char *name);

/* Charge (delta > 0) or refund (delta < 0) memory held outside the Lua heap on the state's
 * behalf. A charge that would exceed the budget is refused: returns -1, nothing charged. */
int voc_lua_charge(lua_State *L, ptrdiff_t delta);

/* The sandbox's print: arguments through tostring, tab-separated, logged at INFO as
 * "rules: file:line: text". Also serves voc.log. */
int voc_lua_print(lua_State *L);

/* "...tail/of/path.lua:12: msg" as Lua shortens long chunk names -> "full/path.lua:12: msg".
 * Returns a malloc'd string (a plain copy when the message does not start that way). */
char *voc_lua_expand_location(const char *msg, const char *path);

/* Instructions the current call has left. */
uint64_t voc_lua_instructions_left(lua_State *L);

/* Charge `n` instructions for work done in C on the current call's behalf. When that uses up
 * the budget, the call is stopped as by the count hook, with the message
 * "file:line: instruction limit exceeded (why)" (file:line of the Lua code that called into
 * C); the function does not return then. */
void voc_lua_charge_instructions(lua_State *L, uint64_t n, const char *why);

/* Stop the current call as if the memory budget ran out (for memory charged with
 * voc_lua_charge). Does not return. */
int voc_lua_memory_error(lua_State *L);

/* Heap bytes the state currently uses (including charged outside memory). */
size_t voc_lua_memory(struct voc_lua *lx);

#endif
