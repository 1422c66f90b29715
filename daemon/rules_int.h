/* Internals shared by rules_load.c (compile + validate a profile) and rules.c (run hooks).
 * Not for use outside the rule engine. */
#ifndef VOC_RULES_INT_H
#define VOC_RULES_INT_H

#include <jansson.h>
#include <lua.h>
#include <stddef.h>

#include "lua_sandbox.h"
#include "rules.h"

struct voc_textnorm;

enum voc_hook {
    VOC_HOOK_CLASSIFY,
    VOC_HOOK_GUARD,
    VOC_HOOK_ON_EVENT,
    VOC_HOOK_ON_CLOCK,
    VOC_HOOK_COUNT
};

extern const char *const voc_hook_names[VOC_HOOK_COUNT];

struct voc_rules_fn {
    int ref;     /* registry reference, LUA_NOREF when absent */
    char *where; /* "file:line" where the function is defined, for messages */
};

struct voc_rules {
    struct voc_lua *lx;
    lua_State *L;
    struct voc_textnorm *tn; /* the writer thread's; used by voc.normalize */
    char *path;
    char *name;
    struct voc_rules_stats stats;
    struct voc_rules_fn hooks[VOC_HOOK_COUNT];
    struct voc_clock_def *clocks;
    struct voc_rules_fn *clock_targets; /* [i].ref set when clock i's target is a function */
    size_t clock_count;
    char **events; /* the profile's own event types */
    size_t event_count;
    json_t *defaults; /* complete default classification */
    json_t *score;    /* NULL when the profile has none */
};

/* Push the Lua view of a case: a lazy table (lua_lazy.h) whose `normalized` is computed on
 * first use when the view does not bring it. Raises on memory errors. */
void voc_rules_push_case(lua_State *L, const json_t *view);

/* Validate classification field `key` with the value at `idx`: a new JSON value, or NULL
 * with a message in err. Never raises. */
json_t *voc_rules_class_value(lua_State *L, const char *key, int idx, char *err, size_t errsize);
/* Validate classification field `key` with the value at `idx` and store it into `into`.
 * Returns 0, or -1 with a message in err. Never raises. */
int voc_rules_class_field(lua_State *L, const char *key, int idx, json_t *into, char *err,
                          size_t errsize);
/* {kind="opinion", category="other", severity="normal", department="", collaborators={},
 *  priority=3, tags={}} */
json_t *voc_rules_builtin_defaults(void);

#endif
