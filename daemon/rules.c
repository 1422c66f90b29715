/* Running a loaded profile's hooks (rules.h). Loading and validation: rules_load.c. */
#include "rules.h"
#include "jsonutil.h"
#include "lifecycle.h"
#include "lua_json.h"
#include "lua_lazy.h"
#include "lua_voc.h"
#include "options.h"
#include "rules_int.h"
#include "textnorm.h"

#include <lauxlib.h>
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const voc_hook_names[VOC_HOOK_COUNT] = {"classify", "guard", "on_event", "on_clock"};

/* Limits on what a hook may hand back: generous for rules, small enough that a runaway
 * loop in a profile cannot flood a case with events or tags. */
#define MAX_ACTIONS 64
#define MAX_LIST_ITEMS 32
#define MAX_FIELD_BYTES 256
/* A note or notification message: as much as the API takes for a note. */
#define MAX_TEXT_BYTES (64 * 1024)
/* A guard's reason goes into a 409 reply and a log line. */
#define MAX_REASON_BYTES 1024

static const char *const kinds[] = {"complaint", "suggestion", "praise",
                                    "inquiry",   "opinion",    NULL};

const char *const voc_class_fields[VOC_CLASS_FIELDS] = {
    "kind", "category", "severity", "department", "collaborators", "priority", "tags"};

/* ---- accessors ---------------------------------------------------------------------- */

const char *voc_rules_name(const struct voc_rules *rules)
{
    return rules->name;
}

const char *voc_rules_path(const struct voc_rules *rules)
{
    return rules->path;
}

struct voc_rules_stats *voc_rules_stats(struct voc_rules *rules)
{
    return &rules->stats;
}

size_t voc_rules_clock_count(const struct voc_rules *rules)
{
    return rules->clock_count;
}

const struct voc_clock_def *voc_rules_clock(const struct voc_rules *rules, size_t index)
{
    return index < rules->clock_count ? &rules->clocks[index] : NULL;
}

bool voc_rules_has_event_type(const struct voc_rules *rules, const char *type)
{
    for (size_t i = 0; i < rules->event_count; i++)
        if (strcmp(rules->events[i], type) == 0)
            return true;
    return false;
}

const json_t *voc_rules_score(const struct voc_rules *rules)
{
    return rules->score;
}

json_t *voc_rules_builtin_defaults(void)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:[], s:i, s:[]}", "kind", "opinion", "category",
                     "other", "severity", "normal", "department", "", "collaborators", "priority",
                     3, "tags");
}

json_t *voc_rules_default_classification(const struct voc_rules *rules)
{
    return json_deep_copy(rules->defaults);
}

/* ---- case views --------------------------------------------------------------------- */

/* The `missing` hook of case views (lua_lazy.h): `normalized` is computed on first use only
 * (hooks that never look at it pay nothing), then stored in the table. */
static int case_index(lua_State *L)
{
    if (lua_type(L, 2) != LUA_TSTRING || strcmp(lua_tostring(L, 2), "normalized") != 0)
        return 0;
    /* Through the metamethods: the view is a lazy table (lua_lazy.h). Both strings stay on
     * the stack below the buffer while it is filled. */
    size_t subject_len = 0, text_len = 0;
    const char *subject = NULL, *text = NULL;
    if (lua_getfield(L, 1, "subject") == LUA_TSTRING)
        subject = lua_tolstring(L, -1, &subject_len);
    if (lua_getfield(L, 1, "text") == LUA_TSTRING)
        text = lua_tolstring(L, -1, &text_len);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    if (subject)
        luaL_addlstring(&b, subject, subject_len);
    luaL_addchar(&b, '\n');
    if (text)
        luaL_addlstring(&b, text, text_len);
    luaL_pushresult(&b);
    voc_lua_push_normalized(L, -1);
    voc_lua_mark_normalized(L, -1);
    lua_pushvalue(L, 2);
    lua_pushvalue(L, -2);
    lua_rawset(L, 1);
    return 1;
}

static void mark_stored_normalized(lua_State *L, const char *key, int idx)
{
    if (strcmp(key, "normalized") == 0 && lua_type(L, idx) == LUA_TSTRING)
        voc_lua_mark_normalized(L, idx);
}

void voc_rules_push_case(lua_State *L, const json_t *view)
{
    if (!json_is_object(view)) {
        voc_lua_push_json(L, view);
        return;
    }
    /* A caller that stored the normalised text (for search) hands it in: it is marked when a
     * hook reads it, so voc.normalize(case.normalized) is free. Otherwise it is computed on
     * first use only. Either way hooks that never look at it pay nothing. */
    const json_t *normalized = json_object_get(view, "normalized");
    if (json_is_string(normalized))
        voc_lua_push_lazy(L, (json_t *)view, NULL, mark_stored_normalized);
    else
        voc_lua_push_lazy(L, (json_t *)view, case_index, NULL);
}

/* ---- classification fields ---------------------------------------------------------- */

static int field_error(char *err, size_t errsize, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int field_error(char *err, size_t errsize, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errsize, fmt, ap);
    va_end(ap);
    return -1;
}

static json_t *checked_string(lua_State *L, int idx, const char *key, bool allow_empty, char *err,
                              size_t errsize)
{
    if (lua_type(L, idx) != LUA_TSTRING) {
        field_error(err, errsize, "%s must be a string, not a %s", key, luaL_typename(L, idx));
        return NULL;
    }
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    if (len == 0 && !allow_empty) {
        field_error(err, errsize, "%s must not be empty", key);
        return NULL;
    }
    if (len > MAX_FIELD_BYTES) {
        field_error(err, errsize, "%s is longer than %d bytes", key, MAX_FIELD_BYTES);
        return NULL;
    }
    json_t *str = json_stringn(s, len);
    if (!str)
        field_error(err, errsize, "%s is not valid UTF-8", key);
    return str;
}

/* A list of distinct non-empty strings (duplicates dropped, order kept). */
static json_t *checked_list(lua_State *L, int idx, const char *key, char *err, size_t errsize)
{
    if (lua_type(L, idx) != LUA_TTABLE) {
        field_error(err, errsize, "%s must be a list of strings, not a %s", key,
                    luaL_typename(L, idx));
        return NULL;
    }
    if (!lua_checkstack(L, 3)) {
        field_error(err, errsize, "out of memory");
        return NULL;
    }
    lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
    lua_Integer keys = 0;
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        keys++;
        lua_pop(L, 1);
    }
    if (keys != n) {
        field_error(err, errsize, "%s must be a list {\"a\", \"b\"}, not a table with names", key);
        return NULL;
    }
    if (n > MAX_LIST_ITEMS) {
        field_error(err, errsize, "%s has more than %d items", key, MAX_LIST_ITEMS);
        return NULL;
    }
    json_t *list = json_array();
    if (!list) {
        field_error(err, errsize, "out of memory");
        return NULL;
    }
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, idx, i);
        char what[64];
        snprintf(what, sizeof what, "%s[%lld]", key, (long long)i);
        json_t *item = checked_string(L, lua_gettop(L), what, false, err, errsize);
        lua_pop(L, 1);
        if (!item) {
            json_decref(list);
            return NULL;
        }
        bool dup = false;
        size_t j;
        json_t *seen;
        json_array_foreach (list, j, seen) {
            if (json_equal(seen, item))
                dup = true;
        }
        if (dup)
            json_decref(item);
        else
            json_array_append_new(list, item);
    }
    return list;
}

int voc_rules_class_index(const char *key)
{
    for (int i = 0; i < VOC_CLASS_FIELDS; i++)
        if (strcmp(key, voc_class_fields[i]) == 0)
            return i;
    return -1;
}

json_t *voc_rules_class_value(lua_State *L, const char *key, int idx, char *err, size_t errsize)
{
    idx = lua_absindex(L, idx);
    json_t *value = NULL;
    if (strcmp(key, "kind") == 0) {
        value = checked_string(L, idx, key, false, err, errsize);
        bool known = false;
        for (int i = 0; value && kinds[i]; i++)
            known = known || strcmp(json_string_value(value), kinds[i]) == 0;
        if (value && !known) {
            field_error(err, errsize,
                        "kind must be complaint, suggestion, praise, inquiry or opinion, not "
                        "'%s'",
                        json_string_value(value));
            json_decref(value);
            return NULL;
        }
    } else if (strcmp(key, "category") == 0 || strcmp(key, "severity") == 0) {
        value = checked_string(L, idx, key, false, err, errsize);
    } else if (strcmp(key, "department") == 0) {
        value = checked_string(L, idx, key, true, err, errsize);
    } else if (strcmp(key, "collaborators") == 0 || strcmp(key, "tags") == 0) {
        value = checked_list(L, idx, key, err, errsize);
    } else if (strcmp(key, "priority") == 0) {
        int isint = 0;
        lua_Integer p = lua_type(L, idx) == LUA_TNUMBER ? lua_tointegerx(L, idx, &isint) : 0;
        if (!isint || p < 1 || p > 4) {
            if (lua_type(L, idx) == LUA_TNUMBER)
                field_error(err, errsize, "priority must be an integer 1..4, not %s",
                            lua_tostring(L, idx));
            else
                field_error(err, errsize, "priority must be an integer 1..4, not a %s",
                            luaL_typename(L, idx));
            return NULL;
        }
        value = json_integer((json_int_t)p);
        if (!value)
            field_error(err, errsize, "out of memory");
    } else {
        field_error(err, errsize,
                    "unknown field '%s' (kind, category, severity, department, "
                    "collaborators, priority, tags)",
                    key);
    }
    return value;
}

int voc_rules_class_field(lua_State *L, const char *key, int idx, json_t *into, char *err,
                          size_t errsize)
{
    json_t *value = voc_rules_class_value(L, key, idx, err, errsize);
    if (!value)
        return -1;
    json_object_set_new(into, key, value);
    return 0;
}

/* ---- the hook trampoline ------------------------------------------------------------ */

struct hook_call;
typedef void (*take_fn)(lua_State *L, struct hook_call *c, int first);

struct hook_call {
    struct voc_rules *r;
    int fn_ref;
    const json_t *case_view;
    const json_t *arg2; /* event or clock */
    const char *status; /* on_clock */
    int nresults;
    take_fn take;
    json_t *out;                      /* result, rooted here so a Lua error cannot leak it */
    json_t *fields[VOC_CLASS_FIELDS]; /* classify: the values given, rooted likewise */
    int verdict;                      /* guard */
    char *reason;                     /* guard */
    double target_s;                  /* clock target */
    char verr[512];                   /* the hook returned something invalid */
    /* actions: what the whole result may still hold (VOC_LUA_JSON_MAX_VALUES/_BYTES), so 64
     * actions sharing one huge string or table cannot multiply it */
    struct voc_lua_json_budget budget;
};

/* Runs inside voc_lua_call: build the arguments, call the hook, check what came back. */
static int run_hook(lua_State *L)
{
    struct hook_call *c = lua_touserdata(L, 1);
    int first = lua_gettop(L) + 1;
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->fn_ref);
    int nargs = 0;
    if (c->case_view) {
        voc_rules_push_case(L, c->case_view);
        nargs++;
    }
    if (c->arg2) {
        voc_lua_push_json(L, c->arg2);
        nargs++;
    }
    if (c->status) {
        lua_pushstring(L, c->status);
        nargs++;
    }
    lua_call(L, nargs, c->nresults);
    c->take(L, c, first);
    return 0;
}

static char *dup_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *dup_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *out = len < 0 ? NULL : malloc((size_t)len + 1);
    if (out) {
        va_start(ap, fmt);
        vsnprintf(out, (size_t)len + 1, fmt, ap);
        va_end(ap);
    }
    return out;
}

/* Run the call; on success returns 0. Otherwise returns -1 with *err set (if err) for both
 * a failing hook and one that returned something invalid (counted as an error). */
static int call_hook(struct voc_rules *r, struct hook_call *c, const char *where, const char *what,
                     char **err)
{
    char *failure = NULL;
    /* For messages without a location of their own (a memory stop): "file:line: classify". */
    char label[512];
    snprintf(label, sizeof label, "%s: %s", where ? where : r->path, what);
    int rc = voc_lua_call(r->lx, run_hook, c, label, &failure);
    if (rc == VOC_LUA_OK && c->verr[0] == '\0') {
        free(failure);
        return 0;
    }
    if (rc == VOC_LUA_OK) {
        atomic_fetch_add_explicit(&r->stats.errors, 1, memory_order_relaxed);
        failure = dup_printf("%s: %s returned %s", where ? where : r->path, what, c->verr);
    }
    if (err)
        *err = failure;
    else
        free(failure);
    return -1;
}

/* ---- classify ----------------------------------------------------------------------- */

static void take_classification(lua_State *L, struct hook_call *c, int first)
{
    if (lua_type(L, first) != LUA_TTABLE) {
        snprintf(c->verr, sizeof c->verr, "a %s (it must return a table)", luaL_typename(L, first));
        return;
    }
    char err[400];
    lua_pushnil(L);
    while (lua_next(L, first) != 0) {
        const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
        int field = key ? voc_rules_class_index(key) : -1;
        json_t *value = field >= 0 ? voc_rules_class_value(L, key, -1, err, sizeof err) : NULL;
        if (!value) {
            if (!key)
                snprintf(c->verr, sizeof c->verr, "a table with a %s key (fields are names)",
                         luaL_typename(L, -2));
            else if (field < 0)
                voc_rules_class_value(L, key, -1, err, sizeof err); /* the message */
            if (key)
                snprintf(c->verr, sizeof c->verr, "an invalid classification: %s", err);
            return;
        }
        c->fields[field] = value;
        lua_pop(L, 1);
    }
    /* Built in the canonical field order, the missing ones copied from the defaults. */
    c->out = json_object();
    if (!c->out)
        luaL_error(L, "out of memory");
    for (int i = 0; i < VOC_CLASS_FIELDS; i++) {
        json_t *v = c->fields[i];
        c->fields[i] = NULL;
        if (!v)
            v = json_deep_copy(json_object_get(c->r->defaults, voc_class_fields[i]));
        if (json_object_set_new_nocheck(c->out, voc_class_fields[i], v) != 0)
            luaL_error(L, "out of memory");
    }
}

static void release_fields(struct hook_call *c)
{
    for (int i = 0; i < VOC_CLASS_FIELDS; i++)
        json_decref(c->fields[i]);
}

static json_t *with_rule_error(const struct voc_rules *r)
{
    json_t *cls = json_deep_copy(r->defaults);
    voc_json_list_add(json_object_get(cls, "tags"), "rule_error");
    return cls;
}

int voc_rules_classify(struct voc_rules *rules, const json_t *case_view, json_t **classification,
                       char **err)
{
    if (err)
        *err = NULL;
    struct voc_rules_fn *fn = &rules->hooks[VOC_HOOK_CLASSIFY];
    if (fn->ref == LUA_NOREF) {
        *classification = voc_rules_default_classification(rules);
        return 0;
    }
    struct hook_call c = {.r = rules,
                          .fn_ref = fn->ref,
                          .case_view = case_view,
                          .nresults = 1,
                          .take = take_classification};
    int rc = call_hook(rules, &c, fn->where, "classify", err);
    release_fields(&c);
    if (rc == 0) {
        *classification = c.out;
        return 0;
    }
    json_decref(c.out);
    *classification = with_rule_error(rules);
    return -1;
}

/* ---- guard -------------------------------------------------------------------------- */

static void take_verdict(lua_State *L, struct hook_call *c, int first)
{
    if (lua_type(L, first) != LUA_TBOOLEAN) {
        snprintf(c->verr, sizeof c->verr, "a %s (it must return true, or false and a reason)",
                 luaL_typename(L, first));
        return;
    }
    if (lua_toboolean(L, first)) {
        c->verdict = 1;
        return;
    }
    int t = lua_type(L, first + 1);
    if (t != LUA_TNIL && t != LUA_TSTRING) {
        snprintf(c->verr, sizeof c->verr, "false with a %s reason (the reason must be a string)",
                 luaL_typename(L, first + 1));
        return;
    }
    c->verdict = 0;
    if (t == LUA_TSTRING && lua_rawlen(L, first + 1) > 0) {
        size_t len;
        const char *reason = lua_tolstring(L, first + 1, &len);
        if (len > MAX_REASON_BYTES) {
            /* Cut at a character boundary and say so, rather than refuse the refusal. */
            len = voc_utf8_cut(reason, len, MAX_REASON_BYTES);
            c->reason = dup_printf("%.*s...", (int)len, reason);
        } else {
            c->reason = strndup(reason, len);
        }
        if (!c->reason)
            luaL_error(L, "out of memory");
    }
}

int voc_rules_guard(struct voc_rules *rules, const json_t *case_view, const json_t *event,
                    char **reason, char **err)
{
    *reason = NULL;
    if (err)
        *err = NULL;
    struct voc_rules_fn *fn = &rules->hooks[VOC_HOOK_GUARD];
    if (fn->ref == LUA_NOREF)
        return 1;
    struct hook_call c = {.r = rules,
                          .fn_ref = fn->ref,
                          .case_view = case_view,
                          .arg2 = event,
                          .nresults = 2,
                          .take = take_verdict};
    if (call_hook(rules, &c, fn->where, "guard", err) != 0) {
        free(c.reason);
        return -1;
    }
    if (c.verdict == 1)
        return 1;
    *reason = c.reason ? c.reason : strdup("refused by the profile's guard");
    return 0;
}

/* ---- actions ------------------------------------------------------------------------ */

static bool known_event_type(const struct voc_rules *r, const char *type)
{
    return voc_event_type_is_core(type) || voc_rules_has_event_type(r, type);
}

/* Count `len` bytes of an action's text against the hook result's budget. */
static int spend_text(struct hook_call *c, size_t len, lua_Integer i, const char *field)
{
    if (len > c->budget.bytes)
        return field_error(c->verr, sizeof c->verr,
                           "actions[%lld].%s: more than %d KiB of text in all actions",
                           (long long)i, field, (int)(VOC_LUA_JSON_MAX_BYTES >> 10));
    c->budget.bytes -= len;
    return 0;
}

/* A note or message: a UTF-8 string of at most MAX_TEXT_BYTES. On the stack top, popped. */
static json_t *take_text(lua_State *L, struct hook_call *c, lua_Integer i, const char *field)
{
    if (lua_type(L, -1) != LUA_TSTRING) {
        field_error(c->verr, sizeof c->verr, "actions[%lld].%s must be a string, not a %s",
                    (long long)i, field, luaL_typename(L, -1));
        lua_pop(L, 1);
        return NULL;
    }
    size_t len;
    const char *s = lua_tolstring(L, -1, &len);
    json_t *v = NULL;
    if (len > MAX_TEXT_BYTES)
        field_error(c->verr, sizeof c->verr, "actions[%lld].%s is longer than %d KiB", (long long)i,
                    field, MAX_TEXT_BYTES / 1024);
    else if (spend_text(c, len, i, field) == 0 && !(v = json_stringn(s, len)))
        field_error(c->verr, sizeof c->verr, "actions[%lld].%s is not valid UTF-8", (long long)i,
                    field);
    lua_pop(L, 1);
    return v;
}

/* Validate the action table at idx and append its JSON form to c->out. */
static int take_action(lua_State *L, struct hook_call *c, int idx, lua_Integer i)
{
    char *verr = c->verr;
    size_t vsize = sizeof c->verr;
    if (lua_type(L, idx) != LUA_TTABLE)
        return field_error(verr, vsize, "actions[%lld] as a %s (each action is a table)",
                           (long long)i, luaL_typename(L, idx));
    int event = 0, tag = 0, notify = 0, message = 0, note = 0, data = 0;
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
        int *slot = !key                          ? NULL
                    : strcmp(key, "event") == 0   ? &event
                    : strcmp(key, "tag") == 0     ? &tag
                    : strcmp(key, "notify") == 0  ? &notify
                    : strcmp(key, "message") == 0 ? &message
                    : strcmp(key, "note") == 0    ? &note
                    : strcmp(key, "data") == 0    ? &data
                                                  : NULL;
        if (!slot) {
            lua_pop(L, 2);
            return field_error(verr, vsize,
                               "actions[%lld] with an unknown key %s%s%s (event, data, note, "
                               "tag, notify, message)",
                               (long long)i, key ? "'" : "a ", key ? key : "non-string",
                               key ? "'" : "");
        }
        *slot = 1;
        lua_pop(L, 1);
    }
    if (event + tag + notify != 1)
        return field_error(verr, vsize,
                           "actions[%lld] that needs exactly one of event, tag or notify",
                           (long long)i);

    json_t *action = json_object();
    if (!action)
        return field_error(verr, vsize, "out of memory");
    json_array_append_new(c->out, action);
    char err[400];
    char what[48];
    /* Fields are fetched again by name: the loop above only learnt which are present. */
    if (tag) {
        if (note || data || message)
            return field_error(verr, vsize, "actions[%lld]: a tag action takes only 'tag'",
                               (long long)i);
        lua_getfield(L, idx, "tag");
        snprintf(what, sizeof what, "actions[%lld].tag", (long long)i);
        json_t *v = checked_string(L, -1, what, false, err, sizeof err);
        lua_pop(L, 1);
        if (!v)
            return field_error(verr, vsize, "%s", err);
        json_object_set_new(action, "tag", v);
        return spend_text(c, json_string_length(v), i, "tag");
    }
    if (notify) {
        if (note || data)
            return field_error(verr, vsize,
                               "actions[%lld]: a notify action takes only 'notify' and "
                               "'message'",
                               (long long)i);
        if (!message)
            return field_error(verr, vsize, "actions[%lld]: notify needs a message string",
                               (long long)i);
        lua_getfield(L, idx, "notify");
        snprintf(what, sizeof what, "actions[%lld].notify", (long long)i);
        json_t *v = checked_string(L, -1, what, false, err, sizeof err);
        lua_pop(L, 1);
        if (!v)
            return field_error(verr, vsize, "%s", err);
        json_object_set_new(action, "notify", v);
        if (spend_text(c, json_string_length(v), i, "notify") != 0)
            return -1;
        lua_getfield(L, idx, "message");
        if (lua_type(L, -1) != LUA_TSTRING) {
            lua_pop(L, 1);
            return field_error(verr, vsize, "actions[%lld]: notify needs a message string",
                               (long long)i);
        }
        json_t *mv = take_text(L, c, i, "message");
        if (!mv)
            return -1;
        json_object_set_new(action, "message", mv);
        return 0;
    }
    if (message)
        return field_error(verr, vsize,
                           "actions[%lld]: 'message' belongs to notify actions (use note)",
                           (long long)i);
    lua_getfield(L, idx, "event");
    snprintf(what, sizeof what, "actions[%lld].event", (long long)i);
    json_t *type = checked_string(L, -1, what, false, err, sizeof err);
    lua_pop(L, 1);
    if (!type)
        return field_error(verr, vsize, "%s", err);
    json_object_set_new(action, "event", type);
    const char *t = json_string_value(type);
    if (!known_event_type(c->r, t))
        return field_error(verr, vsize,
                           "actions[%lld]: unknown event type '%s' (not a core type and not "
                           "in the profile's events)",
                           (long long)i, t);
    if (voc_event_type_is_system(t))
        return field_error(verr, vsize, "actions[%lld]: '%s' events are recorded by vocd only",
                           (long long)i, t);
    if (data) {
        lua_getfield(L, idx, "data");
        snprintf(what, sizeof what, "actions[%lld].data", (long long)i);
        static const char *const list_fields[] = {"collaborators", "tags", NULL};
        struct voc_lua_json_opts opts = {
            .empty = VOC_LUA_JSON_EMPTY_OBJECT, .list_fields = list_fields, .budget = &c->budget};
        json_t *d = voc_lua_to_json(L, -1, &opts, what, err, sizeof err);
        lua_pop(L, 1);
        if (!d)
            return field_error(verr, vsize, "%s", err);
        if (!json_is_object(d)) {
            json_decref(d);
            return field_error(verr, vsize, "%s must be a table with named fields", what);
        }
        json_object_set_new(action, "data", d);
    }
    if (note) {
        lua_getfield(L, idx, "note");
        json_t *nv = take_text(L, c, i, "note");
        if (!nv)
            return -1;
        json_object_set_new(action, "note", nv);
    }
    return 0;
}

static void take_actions(lua_State *L, struct hook_call *c, int first)
{
    c->out = json_array();
    if (!c->out)
        luaL_error(L, "out of memory");
    int t = lua_type(L, first);
    if (t == LUA_TNIL)
        return;
    if (t != LUA_TTABLE) {
        snprintf(c->verr, sizeof c->verr, "a %s (it must return a list of actions or nothing)",
                 luaL_typename(L, first));
        return;
    }
    lua_Integer n = (lua_Integer)lua_rawlen(L, first);
    lua_Integer keys = 0;
    lua_pushnil(L);
    while (lua_next(L, first) != 0) {
        keys++;
        lua_pop(L, 1);
    }
    if (keys != n) {
        snprintf(c->verr, sizeof c->verr,
                 "a table that is not a list (return { {event = ...}, {tag = ...} }, one "
                 "table per action)");
        return;
    }
    if (n > MAX_ACTIONS) {
        snprintf(c->verr, sizeof c->verr, "%lld actions (at most %d)", (long long)n, MAX_ACTIONS);
        return;
    }
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, first, i);
        int rc = take_action(L, c, lua_gettop(L), i);
        lua_pop(L, 1);
        if (rc != 0)
            return;
    }
}

static int run_actions_hook(struct voc_rules *rules, enum voc_hook hook, const json_t *case_view,
                            const json_t *arg2, const char *status, json_t **actions, char **err)
{
    if (err)
        *err = NULL;
    struct voc_rules_fn *fn = &rules->hooks[hook];
    if (fn->ref == LUA_NOREF) {
        *actions = json_array();
        return 0;
    }
    struct hook_call c = {.r = rules,
                          .fn_ref = fn->ref,
                          .case_view = case_view,
                          .arg2 = arg2,
                          .status = status,
                          .nresults = 1,
                          .take = take_actions,
                          .budget = {VOC_LUA_JSON_MAX_VALUES, VOC_LUA_JSON_MAX_BYTES}};
    if (call_hook(rules, &c, fn->where, voc_hook_names[hook], err) == 0) {
        *actions = c.out;
        return 0;
    }
    /* Actions of a failed hook are all dropped: half a plan is worse than none. */
    json_decref(c.out);
    *actions = json_array();
    return -1;
}

int voc_rules_on_event(struct voc_rules *rules, const json_t *case_view, const json_t *event,
                       json_t **actions, char **err)
{
    return run_actions_hook(rules, VOC_HOOK_ON_EVENT, case_view, event, NULL, actions, err);
}

int voc_rules_on_clock(struct voc_rules *rules, const json_t *case_view, const json_t *clock,
                       const char *status, json_t **actions, char **err)
{
    return run_actions_hook(rules, VOC_HOOK_ON_CLOCK, case_view, clock, status, actions, err);
}

/* ---- clock targets ------------------------------------------------------------------ */

static void take_target(lua_State *L, struct hook_call *c, int first)
{
    double s = -1;
    if (lua_type(L, first) == LUA_TNUMBER) {
        s = (double)lua_tonumber(L, first);
    } else if (lua_type(L, first) == LUA_TSTRING) {
        if (voc_parse_duration(lua_tostring(L, first), &s) != 0) {
            snprintf(c->verr, sizeof c->verr, "'%s', which is not a duration (e.g. 2h, 1d)",
                     lua_tostring(L, first));
            return;
        }
    } else {
        snprintf(c->verr, sizeof c->verr, "a %s (it must return a duration like \"24h\")",
                 luaL_typename(L, first));
        return;
    }
    if (!(s > 0) || !isfinite(s)) {
        snprintf(c->verr, sizeof c->verr, "a target of %g s (it must be positive)", s);
        return;
    }
    c->target_s = s;
}

int voc_rules_clock_target(struct voc_rules *rules, size_t index, const json_t *case_view,
                           double *target_s, char **err)
{
    if (err)
        *err = NULL;
    if (index >= rules->clock_count) {
        if (err)
            *err = strdup("no such clock");
        return -1;
    }
    const struct voc_clock_def *def = &rules->clocks[index];
    if (def->target_s >= 0) {
        *target_s = def->target_s;
        return 0;
    }
    struct voc_rules_fn *fn = &rules->clock_targets[index];
    char what[96];
    snprintf(what, sizeof what, "the target of clock '%s'", def->name);
    struct hook_call c = {
        .r = rules, .fn_ref = fn->ref, .case_view = case_view, .nresults = 1, .take = take_target};
    if (call_hook(rules, &c, fn->where, what, err) != 0)
        return -1;
    *target_s = c.target_s;
    return 0;
}
