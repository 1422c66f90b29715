/* Loading a profile (rules.h): compile it in a fresh sandbox, validate the table it returns,
 * run its own tests. Every problem goes to the diag, so `vocd --check` shows them all. */
#include "diag.h"
#include "lifecycle.h"
#include "lua_json.h"
#include "lua_sandbox.h"
#include "lua_voc.h"
#include "options.h"
#include "rules.h"
#include "rules_int.h"
#include "textnorm.h"

#include <ctype.h>
#include <errno.h>
#include <lauxlib.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct profile_test {
    json_t *view;
    json_t *expect;
    int line;
};

struct load_ctx {
    struct voc_rules *r;
    const char *const *calendars;
    struct voc_diag *diag;
    char *src; /* the profile's text, to find lines for messages about table fields */
    struct profile_test *tests;
    size_t test_count;
};

static const char *const profile_fields[] = {
    "name",   "description", "version",  "classify", "guard", "on_event", "on_clock",
    "clocks", "events",      "defaults", "score",    "tests", NULL};
static const char *const clock_fields[] = {"name",     "start", "stop",   "target",
                                           "calendar", "warn",  "reopen", NULL};

static bool in_list(const char *const *list, const char *s)
{
    for (size_t i = 0; list[i]; i++)
        if (strcmp(list[i], s) == 0)
            return true;
    return false;
}

/* ---- line numbers for table fields -------------------------------------------------- */

static bool ident_char(char c)
{
    return isalnum((unsigned char)c) || c == '_';
}

/* Does `line` (len bytes, comment stripped) mention needle as a key ("needle =") or as a
 * quoted string? */
static bool line_mentions(const char *line, size_t len, const char *needle, bool as_key)
{
    size_t n = strlen(needle);
    for (size_t i = 0; n && i + n <= len; i++) {
        if (memcmp(line + i, needle, n) != 0)
            continue;
        char before = i ? line[i - 1] : ' ';
        char after = i + n < len ? line[i + n] : ' ';
        if (as_key) {
            if (ident_char(before) || ident_char(after))
                continue;
            size_t j = i + n;
            while (j < len && isspace((unsigned char)line[j]))
                j++;
            if (j < len && line[j] == '=' && (j + 1 >= len || line[j + 1] != '='))
                return true;
        } else if ((before == '"' || before == '\'') && after == before) {
            return true;
        }
    }
    return false;
}

/* Line (1-based) of the nth (1-based) mention of needle at or after line `from`; 0 if none.
 * A best effort: Lua does not keep line numbers for table fields, so we look at the text. */
static int find_nth_line(const char *src, int from, const char *needle, bool as_key, int nth)
{
    if (!src || !needle)
        return 0;
    int line = 1;
    for (const char *p = src; *p; line++) {
        const char *end = strchr(p, '\n');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *comment = NULL;
        for (size_t i = 0; i + 1 < len; i++) {
            if (p[i] == '-' && p[i + 1] == '-') {
                comment = p + i;
                break;
            }
        }
        size_t code_len = comment ? (size_t)(comment - p) : len;
        if (line >= from && line_mentions(p, code_len, needle, as_key) && --nth == 0)
            return line;
        if (!end)
            break;
        p = end + 1;
    }
    return 0;
}

static int find_line(const char *src, int from, const char *needle, bool as_key)
{
    return find_nth_line(src, from, needle, as_key, 1);
}

static int line_or(int line, int fallback)
{
    return line > 0 ? line : fallback;
}

/* ---- helpers ------------------------------------------------------------------------ */

static char *read_text(const char *path, char **err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        *err = strdup(strerror(errno));
        return NULL;
    }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 8192;
            char *grown = realloc(buf, cap);
            if (!grown) {
                free(buf);
                fclose(f);
                *err = strdup("out of memory");
                return NULL;
            }
            buf = grown;
        }
        size_t got = fread(buf + len, 1, cap - len - 1, f);
        len += got;
        if (got == 0)
            break;
    }
    bool failed = ferror(f);
    fclose(f);
    if (failed) {
        free(buf);
        *err = strdup("read error");
        return NULL;
    }
    buf[len] = '\0';
    return buf;
}

static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return strdup(".");
    if (slash == path)
        return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

/* Is the list at idx a proper sequence 1..n? */
static bool is_list(lua_State *L, int idx)
{
    lua_Integer n = (lua_Integer)lua_rawlen(L, idx), keys = 0;
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        keys++;
        lua_pop(L, 1);
    }
    return keys == n;
}

/* Push t[key] without metamethods and return its type. */
static int raw_field(lua_State *L, int t, const char *key)
{
    lua_pushstring(L, key);
    return lua_rawget(L, t);
}

/* "file:line" where the function at idx is defined, or NULL. */
static char *function_where(lua_State *L, int idx)
{
    lua_Debug ar;
    lua_pushvalue(L, idx);
    char *where = NULL;
    /* A C function (classify = print) has no line: messages then name the profile file. */
    if (lua_getinfo(L, ">S", &ar) && ar.linedefined > 0) {
        const char *src = ar.source[0] == '@' ? ar.source + 1 : ar.short_src;
        size_t len = strlen(src) + 16;
        where = malloc(len);
        if (where)
            snprintf(where, len, "%s:%d", src, ar.linedefined);
    }
    return where;
}

/* ---- the profile table -------------------------------------------------------------- */

static void check_top_level(lua_State *L, struct load_ctx *x, int t)
{
    const char *path = x->r->path;
    lua_pushnil(L);
    while (lua_next(L, t) != 0) {
        if (lua_type(L, -2) != LUA_TSTRING) {
            voc_diag_error(x->diag, path, 0, "the profile table has a %s key; fields are names",
                           luaL_typename(L, -2));
        } else if (!in_list(profile_fields, lua_tostring(L, -2))) {
            const char *key = lua_tostring(L, -2);
            voc_diag_error(x->diag, path, find_line(x->src, 1, key, true),
                           "unknown profile field '%s' (name, description, version, classify, "
                           "guard, on_event, on_clock, clocks, events, defaults, score, tests)",
                           key);
        }
        lua_pop(L, 1);
    }

    int type = raw_field(L, t, "name");
    if (type != LUA_TSTRING || lua_rawlen(L, -1) == 0) {
        /* A missing name has no line; a wrong one is on the first "name =" line. */
        voc_diag_error(x->diag, path, type == LUA_TNIL ? 0 : find_line(x->src, 1, "name", true),
                       "the profile needs a name (a non-empty string)");
    } else {
        x->r->name = strdup(lua_tostring(L, -1));
    }
    lua_pop(L, 1);
    static const char *const texts[] = {"description", "version", NULL};
    for (size_t i = 0; texts[i]; i++) {
        type = raw_field(L, t, texts[i]);
        if (type != LUA_TNIL && type != LUA_TSTRING)
            voc_diag_error(x->diag, path, find_line(x->src, 1, texts[i], true),
                           "%s must be a string, not a %s", texts[i], lua_typename(L, type));
        lua_pop(L, 1);
    }
}

static void load_hooks(lua_State *L, struct load_ctx *x, int t)
{
    for (int h = 0; h < VOC_HOOK_COUNT; h++) {
        int type = raw_field(L, t, voc_hook_names[h]);
        if (type == LUA_TFUNCTION) {
            x->r->hooks[h].where = function_where(L, -1);
            x->r->hooks[h].ref = luaL_ref(L, LUA_REGISTRYINDEX);
            continue;
        }
        if (type != LUA_TNIL)
            voc_diag_error(x->diag, x->r->path, find_line(x->src, 1, voc_hook_names[h], true),
                           "%s must be a function, not a %s", voc_hook_names[h],
                           lua_typename(L, type));
        lua_pop(L, 1);
    }
    if (x->r->hooks[VOC_HOOK_CLASSIFY].ref == LUA_NOREF)
        voc_diag_warn(x->diag, x->r->path, 0,
                      "no classify function: every case gets the default classification");
}

static void load_events(lua_State *L, struct load_ctx *x, int t)
{
    const char *path = x->r->path;
    int type = raw_field(L, t, "events");
    int list = lua_gettop(L);
    int base = find_line(x->src, 1, "events", true);
    if (type == LUA_TNIL)
        goto done;
    if (type != LUA_TTABLE || !is_list(L, list)) {
        voc_diag_error(x->diag, path, base, "events must be a list of event type names");
        goto done;
    }
    size_t n = lua_rawlen(L, list);
    x->r->events = calloc(n ? n : 1, sizeof *x->r->events);
    if (!x->r->events)
        luaL_error(L, "out of memory");
    for (size_t i = 1; i <= n; i++) {
        lua_rawgeti(L, list, (lua_Integer)i);
        const char *name = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
        int line = line_or(find_line(x->src, base, name, false), base);
        if (!name) {
            voc_diag_error(x->diag, path, line, "events[%zu] must be a string, not a %s", i,
                           luaL_typename(L, -1));
        } else if (!voc_event_type_name_valid(name)) {
            voc_diag_error(x->diag, path, line,
                           "event type '%s' is not a valid name (a-z first, then a-z, 0-9, _; "
                           "at most 32)",
                           name);
        } else if (voc_event_type_is_core(name)) {
            voc_diag_error(x->diag, path, line,
                           "event type '%s' is a core type; list only the profile's own", name);
        } else if (voc_rules_has_event_type(x->r, name)) {
            voc_diag_error(x->diag, path, line, "event type '%s' is listed twice", name);
        } else {
            char *copy = strdup(name);
            if (!copy)
                luaL_error(L, "out of memory");
            x->r->events[x->r->event_count++] = copy;
        }
        lua_pop(L, 1);
    }
done:
    lua_settop(L, list - 1);
}

static void load_defaults(lua_State *L, struct load_ctx *x, int t)
{
    x->r->defaults = voc_rules_builtin_defaults();
    if (!x->r->defaults)
        luaL_error(L, "out of memory");
    int type = raw_field(L, t, "defaults");
    int tbl = lua_gettop(L);
    int base = find_line(x->src, 1, "defaults", true);
    if (type == LUA_TTABLE) {
        char err[400];
        lua_pushnil(L);
        while (lua_next(L, tbl) != 0) {
            const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
            int line = line_or(find_line(x->src, base, key, true), base);
            if (!key)
                voc_diag_error(x->diag, x->r->path, line, "defaults: field names must be strings");
            else if (voc_rules_class_field(L, key, -1, x->r->defaults, err, sizeof err) != 0)
                voc_diag_error(x->diag, x->r->path, line, "defaults: %s", err);
            lua_pop(L, 1);
        }
    } else if (type != LUA_TNIL) {
        voc_diag_error(x->diag, x->r->path, base, "defaults must be a table, not a %s",
                       lua_typename(L, type));
    }
    lua_settop(L, tbl - 1);
}

static bool known_calendar(const struct load_ctx *x, const char *name)
{
    if (strcmp(name, "24x7") == 0 || !x->calendars)
        return true;
    return in_list(x->calendars, name);
}

static bool known_event(const struct voc_rules *r, const char *type)
{
    return voc_event_type_is_core(type) || voc_rules_has_event_type(r, type);
}

/* Clock i's fields; `c` is its table's stack index. */
static void load_clock(lua_State *L, struct load_ctx *x, int c, size_t i, int line)
{
    struct voc_rules *r = x->r;
    struct voc_clock_def *def = &r->clocks[i];
    const char *path = r->path;
    char label[80];
    snprintf(label, sizeof label, "clocks[%zu] (%s)", i + 1, def->name ? def->name : "?");

    lua_pushnil(L);
    while (lua_next(L, c) != 0) {
        const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
        if (!key || !in_list(clock_fields, key))
            voc_diag_error(x->diag, path, line_or(find_line(x->src, line, key, true), line),
                           "%s: unknown field %s%s%s (name, start, stop, target, calendar, "
                           "warn, reopen)",
                           label, key ? "'" : "", key ? key : "(not a name)", key ? "'" : "");
        lua_pop(L, 1);
    }

    static const char *const ends[] = {"start", "stop"};
    for (int e = 0; e < 2; e++) {
        int type = raw_field(L, c, ends[e]);
        int fline = line_or(find_line(x->src, line, ends[e], true), line);
        if (type != LUA_TSTRING) {
            voc_diag_error(x->diag, path, fline, "%s: %s must be an event type name", label,
                           ends[e]);
        } else if (!known_event(r, lua_tostring(L, -1))) {
            voc_diag_error(x->diag, path, fline,
                           "%s: %s event '%s' is neither a core type nor in events", label, ends[e],
                           lua_tostring(L, -1));
        } else {
            char *copy = strdup(lua_tostring(L, -1));
            if (!copy)
                luaL_error(L, "out of memory");
            if (e == 0)
                def->start = copy;
            else
                def->stop = copy;
        }
        lua_pop(L, 1);
    }

    int type = raw_field(L, c, "target");
    int fline = line_or(find_line(x->src, line, "target", true), line);
    double seconds = 0;
    if (type == LUA_TFUNCTION) {
        def->target_s = -1;
        r->clock_targets[i].where = function_where(L, -1);
        r->clock_targets[i].ref = luaL_ref(L, LUA_REGISTRYINDEX);
    } else {
        if (type != LUA_TSTRING)
            voc_diag_error(x->diag, path, fline,
                           "%s: target must be a duration like \"24h\" or a function", label);
        else if (voc_parse_duration(lua_tostring(L, -1), &seconds) != 0 || !(seconds > 0))
            voc_diag_error(x->diag, path, fline,
                           "%s: target '%s' is not a positive duration (e.g. 2h, 1d, 1h30m)", label,
                           lua_tostring(L, -1));
        else
            def->target_s = seconds;
        lua_pop(L, 1);
    }

    type = raw_field(L, c, "calendar");
    fline = line_or(find_line(x->src, line, "calendar", true), line);
    const char *calendar = type == LUA_TSTRING ? lua_tostring(L, -1) : "24x7";
    if (type != LUA_TNIL && type != LUA_TSTRING)
        voc_diag_error(x->diag, path, fline, "%s: calendar must be a calendar name", label);
    else if (!known_calendar(x, calendar))
        voc_diag_error(x->diag, path, fline,
                       "%s: unknown calendar '%s' (\"24x7\" or one of the config's calendars)",
                       label, calendar);
    def->calendar = strdup(calendar);
    if (!def->calendar)
        luaL_error(L, "out of memory");
    lua_pop(L, 1);

    type = raw_field(L, c, "warn");
    fline = line_or(find_line(x->src, line, "warn", true), line);
    if (type == LUA_TNUMBER) {
        double w = (double)lua_tonumber(L, -1);
        if (!(w >= 0 && w < 1))
            voc_diag_error(x->diag, path, fline,
                           "%s: warn must be a fraction of the target, 0 <= warn < 1", label);
        else
            def->warn = w;
    } else if (type != LUA_TNIL) {
        voc_diag_error(x->diag, path, fline, "%s: warn must be a number, not a %s", label,
                       lua_typename(L, type));
    }
    lua_pop(L, 1);

    type = raw_field(L, c, "reopen");
    if (type == LUA_TBOOLEAN)
        def->reopen = lua_toboolean(L, -1);
    else if (type != LUA_TNIL)
        voc_diag_error(x->diag, path, line_or(find_line(x->src, line, "reopen", true), line),
                       "%s: reopen must be true or false", label);
    lua_pop(L, 1);
}

static void load_clocks(lua_State *L, struct load_ctx *x, int t)
{
    struct voc_rules *r = x->r;
    int type = raw_field(L, t, "clocks");
    int list = lua_gettop(L);
    int base = find_line(x->src, 1, "clocks", true);
    if (type == LUA_TNIL)
        goto done;
    if (type != LUA_TTABLE || !is_list(L, list)) {
        voc_diag_error(x->diag, r->path, base, "clocks must be a list of clock tables");
        goto done;
    }
    size_t n = lua_rawlen(L, list);
    r->clocks = calloc(n ? n : 1, sizeof *r->clocks);
    r->clock_targets = calloc(n ? n : 1, sizeof *r->clock_targets);
    if (!r->clocks || !r->clock_targets)
        luaL_error(L, "out of memory");
    for (size_t i = 0; i < n; i++)
        r->clock_targets[i].ref = LUA_NOREF;
    r->clock_count = n;
    /* Clocks are searched for in order, so a repeated name is found at its own line. */
    int after = base;
    for (size_t i = 0; i < n; i++) {
        if (lua_rawgeti(L, list, (lua_Integer)i + 1) != LUA_TTABLE) {
            voc_diag_error(x->diag, r->path, base, "clocks[%zu] must be a table", i + 1);
            lua_pop(L, 1);
            continue;
        }
        int c = lua_gettop(L);
        int line = base;
        if (raw_field(L, c, "name") == LUA_TSTRING) {
            const char *name = lua_tostring(L, -1);
            line = line_or(find_line(x->src, after, name, false), base);
            after = line + 1;
            bool dup = false;
            for (size_t j = 0; j < i; j++)
                dup = dup || (r->clocks[j].name && strcmp(r->clocks[j].name, name) == 0);
            if (!voc_event_type_name_valid(name))
                voc_diag_error(x->diag, r->path, line,
                               "clocks[%zu]: name '%s' is not valid (a-z first, then a-z, 0-9, "
                               "_; at most 32)",
                               i + 1, name);
            else if (dup)
                voc_diag_error(x->diag, r->path, line, "clocks[%zu]: a second clock named '%s'",
                               i + 1, name);
            r->clocks[i].name = strdup(name);
            if (!r->clocks[i].name)
                luaL_error(L, "out of memory");
        } else {
            voc_diag_error(x->diag, r->path, base, "clocks[%zu] needs a name (a string)", i + 1);
        }
        lua_pop(L, 1);
        load_clock(L, x, c, i, line);
        lua_settop(L, c - 1);
    }
done:
    lua_settop(L, list - 1);
}

static void load_score(lua_State *L, struct load_ctx *x, int t)
{
    int type = raw_field(L, t, "score");
    if (type == LUA_TTABLE) {
        char err[400];
        struct voc_lua_json_opts opts = {.empty = VOC_LUA_JSON_EMPTY_OBJECT,
                                         .skip_functions = true};
        x->r->score = voc_lua_to_json(L, -1, &opts, "score", err, sizeof err);
        if (!x->r->score)
            voc_diag_error(x->diag, x->r->path, find_line(x->src, 1, "score", true), "%s", err);
    } else if (type != LUA_TNIL) {
        voc_diag_error(x->diag, x->r->path, find_line(x->src, 1, "score", true),
                       "score must be a table, not a %s", lua_typename(L, type));
    }
    lua_pop(L, 1);
}

/* A test's case as the core would show a brand-new case, with the test's fields on top. */
static json_t *test_view(json_t *fields)
{
    json_t *view = json_pack("{s:i, s:s, s:s, s:s, s:{}, s:{}, s:[], s:{}, s:[{s:i, s:s, s:s, "
                             "s:{}}]}",
                             "id", 0, "state", "new", "channel", "api", "source", "customer",
                             "customer", "product", "attachments", "fields", "events", "seq", 1,
                             "type", "received", "actor", "api", "data");
    if (!view)
        return NULL;
    /* Empty Lua tables convert to {}; give the list fields their proper empty form. */
    static const char *const lists[] = {"attachments", "events", NULL};
    for (size_t i = 0; lists[i]; i++) {
        json_t *v = json_object_get(fields, lists[i]);
        if (json_is_object(v) && json_object_size(v) == 0)
            json_object_set_new(fields, lists[i], json_array());
    }
    json_object_update(view, fields);
    return view;
}

static void load_tests(lua_State *L, struct load_ctx *x, int t)
{
    const char *path = x->r->path;
    int type = raw_field(L, t, "tests");
    int list = lua_gettop(L);
    int base = find_line(x->src, 1, "tests", true);
    if (type == LUA_TNIL)
        goto done;
    if (type != LUA_TTABLE || !is_list(L, list)) {
        voc_diag_error(x->diag, path, base,
                       "tests must be a list of { case = {...}, expect = {...} }");
        goto done;
    }
    size_t n = lua_rawlen(L, list);
    x->tests = calloc(n ? n : 1, sizeof *x->tests);
    if (!x->tests)
        luaL_error(L, "out of memory");
    char err[400];
    for (size_t i = 1; i <= n; i++) {
        int line = line_or(find_nth_line(x->src, base, "case", true, (int)i), base);
        if (lua_rawgeti(L, list, (lua_Integer)i) != LUA_TTABLE) {
            voc_diag_error(x->diag, path, line, "tests[%zu] must be a table", i);
            lua_pop(L, 1);
            continue;
        }
        int item = lua_gettop(L);
        bool ok = true;
        lua_pushnil(L);
        while (lua_next(L, item) != 0) {
            const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
            if (!key || (strcmp(key, "case") != 0 && strcmp(key, "expect") != 0)) {
                voc_diag_error(x->diag, path, line, "tests[%zu]: unknown field %s (case, expect)",
                               i, key ? key : "(not a name)");
                ok = false;
            }
            lua_pop(L, 1);
        }
        json_t *fields = NULL, *expect = NULL;
        struct voc_lua_json_opts as_object = {.empty = VOC_LUA_JSON_EMPTY_OBJECT};
        struct voc_lua_json_opts as_array = {.empty = VOC_LUA_JSON_EMPTY_ARRAY};
        char what[32];
        snprintf(what, sizeof what, "tests[%zu].case", i);
        if (raw_field(L, item, "case") != LUA_TTABLE) {
            voc_diag_error(x->diag, path, line, "%s must be a table", what);
            ok = false;
        } else if (!(fields = voc_lua_to_json(L, -1, &as_object, what, err, sizeof err))) {
            voc_diag_error(x->diag, path, line, "%s", err);
            ok = false;
        }
        lua_pop(L, 1);
        snprintf(what, sizeof what, "tests[%zu].expect", i);
        if (raw_field(L, item, "expect") != LUA_TTABLE) {
            voc_diag_error(x->diag, path, line, "%s must be a table", what);
            ok = false;
        } else if (!(expect = voc_lua_to_json(L, -1, &as_array, what, err, sizeof err)) ||
                   !json_is_object(expect)) {
            voc_diag_error(x->diag, path, line, "%s", expect ? "expect must name fields" : err);
            ok = false;
        } else {
            const char *key;
            json_t *v;
            json_object_foreach (expect, key, v) {
                if (voc_rules_class_index(key) < 0) {
                    voc_diag_error(x->diag, path, line,
                                   "%s: unknown field '%s' (kind, category, severity, "
                                   "department, collaborators, priority, tags)",
                                   what, key);
                    ok = false;
                }
            }
        }
        lua_pop(L, 1);
        json_t *view = ok ? test_view(fields) : NULL;
        json_decref(fields);
        if (view) {
            x->tests[x->test_count].view = view;
            x->tests[x->test_count].expect = json_incref(expect);
            x->tests[x->test_count].line = line;
            x->test_count++;
        }
        json_decref(expect);
        lua_settop(L, item - 1);
    }
done:
    lua_settop(L, list - 1);
}

/* Runs inside voc_lua_call: the voc library, the profile chunk, then the checks. */
static int load_profile(lua_State *L)
{
    struct load_ctx *x = lua_touserdata(L, 1);
    voc_lua_json_init(L);
    voc_lua_open_voc(L, x->r->tn);
    voc_lua_push_file(L, x->r->path);
    lua_call(L, 0, 1);
    if (!lua_istable(L, -1))
        return luaL_error(L, "the profile must return a table, not a %s", luaL_typename(L, -1));
    int t = lua_gettop(L);
    check_top_level(L, x, t);
    load_hooks(L, x, t);
    load_events(L, x, t);
    load_defaults(L, x, t);
    load_clocks(L, x, t);
    load_score(L, x, t);
    load_tests(L, x, t);
    return 0;
}

static char *json_text(const json_t *v)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    return s ? s : strdup("?");
}

static void run_tests(struct load_ctx *x)
{
    for (size_t i = 0; i < x->test_count; i++) {
        struct profile_test *t = &x->tests[i];
        json_t *cls = NULL;
        char *err = NULL;
        if (voc_rules_classify(x->r, t->view, &cls, &err) != 0) {
            voc_diag_error(x->diag, x->r->path, t->line, "tests[%zu]: classify failed: %s", i + 1,
                           err ? err : "?");
            free(err);
            json_decref(cls);
            continue;
        }
        const char *key;
        json_t *want;
        json_object_foreach (t->expect, key, want) {
            json_t *got = json_object_get(cls, key);
            if (got && json_equal(got, want))
                continue;
            char *w = json_text(want), *g = got ? json_text(got) : strdup("nothing");
            voc_diag_error(x->diag, x->r->path, t->line, "tests[%zu]: %s: expected %s, got %s",
                           i + 1, key, w, g ? g : "?");
            free(w);
            free(g);
        }
        json_decref(cls);
    }
}

static void free_tests(struct load_ctx *x)
{
    for (size_t i = 0; i < x->test_count; i++) {
        json_decref(x->tests[i].view);
        json_decref(x->tests[i].expect);
    }
    free(x->tests);
}

int voc_rules_load(const char *profile_path, const char *lib_dir,
                   const struct voc_rules_limits *limits, const char *const *calendars,
                   struct voc_rules **out, struct voc_diag *diag)
{
    *out = NULL;
    size_t errors_before = diag->errors;
    struct load_ctx x = {.calendars = calendars, .diag = diag};
    char *err = NULL;
    char *dir = NULL;
    struct voc_rules *r = calloc(1, sizeof *r);
    if (!r || !(r->path = strdup(profile_path)))
        goto nomem;
    for (int h = 0; h < VOC_HOOK_COUNT; h++)
        r->hooks[h].ref = LUA_NOREF;
    x.r = r;

    x.src = read_text(profile_path, &err);
    if (!x.src) {
        voc_diag_error(diag, profile_path, 0, "cannot read the profile: %s", err ? err : "?");
        goto fail;
    }
    if (voc_textnorm_new(&r->tn, &err) != 0) {
        voc_diag_error(diag, profile_path, 0, "text normalisation: %s", err ? err : "?");
        goto fail;
    }
    dir = dir_of(profile_path);
    if (!dir)
        goto nomem;
    struct voc_lua_config cfg = {
        .max_instructions = limits ? limits->max_instructions : 0,
        .max_memory = limits ? limits->max_memory : 0,
        .profile_dir = dir,
        .lib_dir = lib_dir,
        .stats = &r->stats,
    };
    if (voc_lua_new(&cfg, &r->lx, &err) != 0) {
        voc_diag_error(diag, profile_path, 0, "%s", err ? err : "cannot create a Lua state");
        goto fail;
    }
    r->L = voc_lua_state(r->lx);
    if (voc_lua_call(r->lx, load_profile, &x, profile_path, &err) != VOC_LUA_OK) {
        voc_diag_error(diag, NULL, 0, "%s", err ? err : "the profile failed to load");
        goto fail;
    }
    if (diag->errors == errors_before)
        run_tests(&x);
    if (diag->errors != errors_before)
        goto fail;
    /* Loading and self-tests are not traffic: start the counters at zero. */
    atomic_store(&r->stats.calls, 0);
    atomic_store(&r->stats.errors, 0);
    atomic_store(&r->stats.instr_limit, 0);
    atomic_store(&r->stats.memory_limit, 0);
    free(dir);
    free(x.src);
    free_tests(&x);
    *out = r;
    return 0;
nomem:
    voc_diag_error(diag, profile_path, 0, "out of memory");
fail:
    free(err);
    free(dir);
    free(x.src);
    free_tests(&x);
    voc_rules_free(r);
    return -1;
}

void voc_rules_free(struct voc_rules *rules)
{
    if (!rules)
        return;
    /* The state first: nothing in it may outlive the text normaliser it borrows. */
    voc_lua_free(rules->lx);
    voc_textnorm_free(rules->tn);
    for (int h = 0; h < VOC_HOOK_COUNT; h++)
        free(rules->hooks[h].where);
    for (size_t i = 0; i < rules->clock_count; i++) {
        free(rules->clocks[i].name);
        free(rules->clocks[i].start);
        free(rules->clocks[i].stop);
        free(rules->clocks[i].calendar);
        free(rules->clock_targets[i].where);
    }
    free(rules->clocks);
    free(rules->clock_targets);
    for (size_t i = 0; i < rules->event_count; i++)
        free(rules->events[i]);
    free(rules->events);
    json_decref(rules->defaults);
    json_decref(rules->score);
    free(rules->name);
    free(rules->path);
    free(rules);
}
