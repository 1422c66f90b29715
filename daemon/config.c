#include "config.h"

#include <ctype.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "options.h"
#include "version.h"

static const char *const log_levels[] = {"debug", "info", "warn", "error", NULL};
static const char *const roles[] = {"admin", "agent", "viewer", "ingest", NULL};
static const char *const notifier_types[] = {"webhook", "email", "log", NULL};

/* Options of a nested section are relative to that section's struct. */
#define SUB(section, field)                                                                   \
    (offsetof(struct voc_config, section.field) - offsetof(struct voc_config, section))
#define OPT(name, type, field, def, flags, help)                                              \
    {name, type, offsetof(struct voc_config, field), def, flags, help, NULL, 0, 0, NULL, 0, 0}

static const struct voc_option listen_options[] = {
    {"http", VOC_OPT_STRING, SUB(listen, http), "127.0.0.1:8080", 0,
     "HTTP API listener, host:port (port 0 = any free port, logged at start)", NULL, 0, 0, NULL,
     0, 0},
    {0},
};

static const struct voc_option http_options[] = {
    {"max_body_size", VOC_OPT_SIZE, SUB(http, max_body_size), "1MiB", 0,
     "largest request body accepted (413 above)", NULL, 0, 0, NULL, 0, 0},
    {"request_timeout", VOC_OPT_DURATION, SUB(http, request_timeout_s),
     "30s", 0, "idle time after which a client connection is closed", NULL, 0, 0, NULL, 0, 0},
    {0},
};

static const struct voc_option store_options[] = {
    {"map_size", VOC_OPT_SIZE, SUB(store, map_size), "256MiB", 0,
     "initial LMDB map size; doubled when full", NULL, 0, 0, NULL, 0, 0},
    {"max_map_size", VOC_OPT_SIZE, SUB(store, max_map_size), "64GiB", 0,
     "the map never grows beyond this; writes then get 503", NULL, 0, 0, NULL, 0, 0},
    {"max_readers", VOC_OPT_INT, SUB(store, max_readers), "126", 0,
     "LMDB reader slots (threads and processes reading at once)", NULL, 0, 0, NULL, 1, 100000},
    {0},
};

static const struct voc_option writer_options[] = {
    {"queue_limit", VOC_OPT_INT, SUB(writer, queue_limit), "10000", 0,
     "writes waiting for the writer thread beyond which requests get 503", NULL, 0, 0, NULL, 1,
     10000000},
    {"batch_max", VOC_OPT_INT, SUB(writer, batch_max), "1000", 0,
     "most writes committed in one transaction", NULL, 0, 0, NULL, 1, 1000000},
    {0},
};

static const struct voc_option rules_options[] = {
    {"lib_dir", VOC_OPT_PATH, SUB(rules, lib_dir), NULL, 0,
     "shared Lua modules for require (default: <profile folder>/../lib)", NULL, 0, 0, NULL, 0,
     0},
    {"max_instructions", VOC_OPT_INT, SUB(rules, max_instructions),
     "10000000", 0, "Lua instructions per hook call", NULL, 0, 0, NULL, 1000, 1000000000000LL},
    {"max_memory", VOC_OPT_SIZE, SUB(rules, max_memory), "64MiB", 0,
     "memory of the profile's Lua state", NULL, 0, 0, NULL, 0, 0},
    {0},
};

static const struct voc_option token_options[] = {
    {"name", VOC_OPT_STRING, offsetof(struct voc_token_config, name), NULL, VOC_OPT_REQUIRED,
     "who holds the token (shown as the actor of its events)", NULL, 0, 0, NULL, 0, 0},
    {"role", VOC_OPT_ENUM, offsetof(struct voc_token_config, role), NULL, VOC_OPT_REQUIRED,
     "what the token may do (docs/api.md, Roles)", NULL, 0, 0, roles, 0, 0},
    {"departments", VOC_OPT_STRING_LIST, offsetof(struct voc_token_config, departments), NULL, 0,
     "agent only: the departments whose cases it sees", NULL, 0,
     offsetof(struct voc_token_config, department_count), NULL, 0, 0},
    {"sha256", VOC_OPT_STRING, offsetof(struct voc_token_config, sha256), NULL, VOC_OPT_REQUIRED,
     "hex SHA-256 of the token (printf %s TOKEN | sha256sum)", NULL, 0, 0, NULL, 0, 0},
    {0},
};

static const struct voc_option auth_options[] = {
    {"tokens", VOC_OPT_TABLE_LIST, SUB(auth, tokens), NULL, 0,
     "bearer tokens", token_options, sizeof(struct voc_token_config),
     SUB(auth, token_count), NULL, 0, 0},
    {0},
};

static const struct voc_option calendar_options[] = {
    {"time_zone", VOC_OPT_STRING, offsetof(struct voc_calendar_config, time_zone), NULL,
     VOC_OPT_REQUIRED, "IANA time zone, e.g. Asia/Shanghai", NULL, 0, 0, NULL, 0, 0},
    {"hours", VOC_OPT_STRING_MAP, offsetof(struct voc_calendar_config, hours), NULL,
     VOC_OPT_REQUIRED, "working hours per weekday (mon..sun): \"09:00-12:00,13:00-18:00\"", NULL,
     0, offsetof(struct voc_calendar_config, hour_count), NULL, 0, 0},
    {"extra_workday_hours", VOC_OPT_STRING,
     offsetof(struct voc_calendar_config, extra_workday_hours), NULL, 0,
     "hours on make-up working days (default: Monday's)", NULL, 0, 0, NULL, 0, 0},
    {"holidays", VOC_OPT_STRING_LIST, offsetof(struct voc_calendar_config, holidays), NULL, 0,
     "days off, YYYY-MM-DD", NULL, 0, offsetof(struct voc_calendar_config, holiday_count), NULL,
     0, 0},
    {"extra_workdays", VOC_OPT_STRING_LIST, offsetof(struct voc_calendar_config, extra_workdays),
     NULL, 0, "make-up working days (调休), YYYY-MM-DD", NULL, 0,
     offsetof(struct voc_calendar_config, extra_workday_count), NULL, 0, 0},
    {0},
};

static const struct voc_option notifier_options[] = {
    {"name", VOC_OPT_STRING, offsetof(struct voc_notifier_config, name), NULL, VOC_OPT_REQUIRED,
     "how actions refer to it", NULL, 0, 0, NULL, 0, 0},
    {"type", VOC_OPT_ENUM, offsetof(struct voc_notifier_config, type), NULL, VOC_OPT_REQUIRED,
     "how notifications are delivered", NULL, 0, 0, notifier_types, 0, 0},
    {"url", VOC_OPT_STRING, offsetof(struct voc_notifier_config, url), NULL, 0,
     "webhook: where to POST", NULL, 0, 0, NULL, 0, 0},
    {"secret", VOC_OPT_STRING, offsetof(struct voc_notifier_config, secret), NULL, 0,
     "webhook: HMAC-SHA256 key for the signature header", NULL, 0, 0, NULL, 0, 0},
    {"smtp", VOC_OPT_STRING, offsetof(struct voc_notifier_config, smtp), NULL, 0,
     "email: smtp://host:port", NULL, 0, 0, NULL, 0, 0},
    {"from", VOC_OPT_STRING, offsetof(struct voc_notifier_config, from), NULL, 0,
     "email: sender address", NULL, 0, 0, NULL, 0, 0},
    {"to", VOC_OPT_STRING_LIST, offsetof(struct voc_notifier_config, to), NULL, 0,
     "email: recipients", NULL, 0, offsetof(struct voc_notifier_config, to_count), NULL, 0, 0},
    {"timeout", VOC_OPT_DURATION, offsetof(struct voc_notifier_config, timeout_s), "10s", 0,
     "one delivery attempt", NULL, 0, 0, NULL, 0, 0},
    {"expire", VOC_OPT_DURATION, offsetof(struct voc_notifier_config, expire_s), "24h", 0,
     "give up retrying after this and record the notification as failed", NULL, 0, 0, NULL, 0,
     0},
    {0},
};

static const struct voc_option core_options[] = {
    OPT("data_dir", VOC_OPT_PATH, data_dir, NULL, VOC_OPT_REQUIRED,
        "LMDB environment folder, created if missing"),
    {"listen", VOC_OPT_TABLE, offsetof(struct voc_config, listen), NULL, 0, "listeners",
     listen_options, 0, 0, NULL, 0, 0},
    {"log_level", VOC_OPT_ENUM, offsetof(struct voc_config, log_level), "info", 0,
     "lowest level written to stderr", NULL, 0, 0, log_levels, 0, 0},
    OPT("profile", VOC_OPT_PATH, profile, NULL, 0, "the Lua profile with the company's rules"),
    OPT("plugin_dir", VOC_OPT_PATH, plugin_dir, VOC_DEFAULT_PLUGIN_DIR, 0,
        "where channel plugins (.so) are loaded from"),
    {"http", VOC_OPT_TABLE, offsetof(struct voc_config, http), NULL, 0, "HTTP server limits",
     http_options, 0, 0, NULL, 0, 0},
    {"store", VOC_OPT_TABLE, offsetof(struct voc_config, store), NULL, 0, "LMDB case store",
     store_options, 0, 0, NULL, 0, 0},
    {"writer", VOC_OPT_TABLE, offsetof(struct voc_config, writer), NULL, 0,
     "group-commit writer", writer_options, 0, 0, NULL, 0, 0},
    {"rules", VOC_OPT_TABLE, offsetof(struct voc_config, rules), NULL, 0, "Lua rule budgets",
     rules_options, 0, 0, NULL, 0, 0},
    {"auth", VOC_OPT_TABLE, offsetof(struct voc_config, auth), NULL, 0, "API access",
     auth_options, 0, 0, NULL, 0, 0},
    {"calendars", VOC_OPT_TABLE_MAP, offsetof(struct voc_config, calendars), NULL, 0,
     "business calendars for SLA clocks", calendar_options, sizeof(struct voc_calendar_config),
     offsetof(struct voc_config, calendar_count), NULL, 0, 0},
    {"notifiers", VOC_OPT_TABLE_LIST, offsetof(struct voc_config, notifiers), NULL, 0,
     "where on_event / on_clock notifications go", notifier_options,
     sizeof(struct voc_notifier_config), offsetof(struct voc_config, notifier_count), NULL, 0, 0},
    {0},
};

const struct voc_option *voc_config_options(void)
{
    return core_options;
}

int voc_parse_listen(const char *text, char **host, uint16_t *port)
{
    const char *colon;
    const char *host_start = text;
    size_t host_len;
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (!close || close[1] != ':')
            return -1;
        host_start = text + 1;
        host_len = (size_t)(close - host_start);
        colon = close + 1;
    } else {
        colon = strrchr(text, ':');
        if (!colon)
            return -1;
        host_len = (size_t)(colon - text);
    }
    if (host_len == 0)
        return -1;
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (end == colon + 1 || *end || p < 0 || p > 65535)
        return -1;
    *host = strndup(host_start, host_len);
    *port = (uint16_t)p;
    return *host ? 0 : -1;
}

const char *voc_role_name(int role)
{
    return role >= 0 && role < 4 ? roles[role] : "?";
}

const struct voc_calendar_config *voc_config_calendar(const struct voc_config *cfg,
                                                      const char *name)
{
    for (size_t i = 0; i < cfg->calendar_count; i++)
        if (strcmp(cfg->calendars[i].name, name) == 0)
            return &cfg->calendars[i];
    return NULL;
}

static int hex_decode(const char *hex, unsigned char *out, size_t out_len)
{
    if (strlen(hex) != out_len * 2)
        return -1;
    for (size_t i = 0; i < out_len; i++) {
        unsigned v = 0;
        for (int j = 0; j < 2; j++) {
            char c = (char)tolower((unsigned char)hex[2 * i + j]);
            v <<= 4;
            if (c >= '0' && c <= '9')
                v |= (unsigned)(c - '0');
            else if (c >= 'a' && c <= 'f')
                v |= (unsigned)(c - 'a' + 10);
            else
                return -1;
        }
        out[i] = (unsigned char)v;
    }
    return 0;
}

/* Finds the line of element i of the list under `key` for messages about it. */
static int item_line(struct voc_yaml_node *root, const char *section, const char *key, size_t i)
{
    struct voc_yaml_node *n = root;
    if (section)
        n = voc_yaml_get(n, section);
    n = voc_yaml_get(n, key);
    if (n && n->type == VOC_YAML_SEQ && i < n->count)
        return n->values[i]->line;
    if (n && n->type == VOC_YAML_MAP && i < n->count)
        return n->keys[i]->line;
    return n ? n->line : 0;
}

static void check_auth(struct voc_config *cfg, struct voc_diag *diag)
{
    for (size_t i = 0; i < cfg->auth.token_count; i++) {
        struct voc_token_config *t = &cfg->auth.tokens[i];
        t->line = item_line(cfg->doc.root, "auth", "tokens", i);
        if (t->sha256 && hex_decode(t->sha256, t->hash, sizeof t->hash) != 0)
            voc_diag_error(diag, cfg->path, t->line,
                           "auth.tokens[%zu].sha256 must be 64 hex digits (the SHA-256 of the "
                           "token, never the token itself)",
                           i);
        if (t->role == VOC_ROLE_AGENT && t->department_count == 0)
            voc_diag_error(diag, cfg->path, t->line,
                           "auth.tokens[%zu]: an agent token needs departments", i);
        if (t->role != VOC_ROLE_AGENT && t->department_count > 0)
            voc_diag_error(diag, cfg->path, t->line,
                           "auth.tokens[%zu]: departments only apply to agent tokens", i);
        for (size_t j = 0; j < i; j++) {
            if (t->name && cfg->auth.tokens[j].name &&
                strcmp(t->name, cfg->auth.tokens[j].name) == 0)
                voc_diag_error(diag, cfg->path, t->line, "auth.tokens[%zu]: name '%s' is used twice",
                               i, t->name);
            else if (t->sha256 && cfg->auth.tokens[j].sha256 &&
                     memcmp(t->hash, cfg->auth.tokens[j].hash, sizeof t->hash) == 0)
                voc_diag_error(diag, cfg->path, t->line,
                               "auth.tokens[%zu]: same token hash as auth.tokens[%zu]", i, j);
        }
    }
    if (cfg->auth.token_count == 0)
        voc_diag_warn(diag, cfg->path, 0,
                      "no auth.tokens: every /api/v1 request will be refused with 401");
}

static void check_calendars(struct voc_config *cfg, struct voc_diag *diag)
{
    static const char *const days[] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun", NULL};
    for (size_t i = 0; i < cfg->calendar_count; i++) {
        struct voc_calendar_config *c = &cfg->calendars[i];
        c->line = item_line(cfg->doc.root, NULL, "calendars", i);
        if (strcmp(c->name, "24x7") == 0)
            voc_diag_error(diag, cfg->path, c->line,
                           "calendars: '24x7' is built in and cannot be redefined");
        for (size_t h = 0; h < c->hour_count; h++) {
            int known = 0;
            for (int d = 0; days[d]; d++)
                known |= strcmp(days[d], c->hours[h].key) == 0;
            if (!known)
                voc_diag_error(diag, cfg->path, c->line,
                               "calendars.%s.hours: '%s' is not a weekday (mon..sun)", c->name,
                               c->hours[h].key);
        }
    }
}

static void check_notifiers(struct voc_config *cfg, struct voc_diag *diag)
{
    for (size_t i = 0; i < cfg->notifier_count; i++) {
        struct voc_notifier_config *n = &cfg->notifiers[i];
        n->line = item_line(cfg->doc.root, NULL, "notifiers", i);
        if (n->type == VOC_NOTIFIER_WEBHOOK && n->url && strncmp(n->url, "http://", 7) != 0 &&
            strncmp(n->url, "https://", 8) != 0)
            voc_diag_error(diag, cfg->path, n->line,
                           "notifiers[%zu] (%s): url must start with http:// or https://", i,
                           n->name ? n->name : "?");
        if (n->type == VOC_NOTIFIER_EMAIL && n->smtp && strncmp(n->smtp, "smtp://", 7) != 0 &&
            strncmp(n->smtp, "smtps://", 8) != 0)
            voc_diag_error(diag, cfg->path, n->line,
                           "notifiers[%zu] (%s): smtp must start with smtp:// or smtps://", i,
                           n->name ? n->name : "?");
        if (n->type == VOC_NOTIFIER_WEBHOOK && !n->url)
            voc_diag_error(diag, cfg->path, n->line, "notifiers[%zu] (%s): a webhook needs url",
                           i, n->name ? n->name : "?");
        if (n->type == VOC_NOTIFIER_EMAIL && (!n->smtp || !n->from))
            voc_diag_error(diag, cfg->path, n->line,
                           "notifiers[%zu] (%s): email needs smtp and from", i,
                           n->name ? n->name : "?");
        /* A notifier that only carries the e-mail plugin's acknowledgements (they name their
         * own recipient) has no list of its own; a rule's notification to it cannot go out. */
        if (n->type == VOC_NOTIFIER_EMAIL && n->smtp && n->from && n->to_count == 0)
            voc_diag_warn(diag, cfg->path, n->line,
                          "notifiers[%zu] (%s): email without to: only notifications that name "
                          "their own recipients (acknowledgements) can be delivered",
                          i, n->name ? n->name : "?");
        for (size_t j = 0; j < i; j++)
            if (n->name && cfg->notifiers[j].name && strcmp(n->name, cfg->notifiers[j].name) == 0)
                voc_diag_error(diag, cfg->path, n->line, "notifiers[%zu]: name '%s' is used twice",
                               i, n->name);
    }
}

/* `plugins:` is a list of mappings; the core reads name and optional, the plugin loader
 * validates the rest against the plugin's option table. */
static void load_plugins(struct voc_config *cfg, struct voc_diag *diag)
{
    struct voc_yaml_node *list = voc_yaml_get(cfg->doc.root, "plugins");
    if (!list || voc_yaml_is_null(list))
        return;
    if (list->type != VOC_YAML_SEQ) {
        voc_diag_error(diag, cfg->path, list->line, "plugins must be a list");
        return;
    }
    cfg->plugins = calloc(list->count ? list->count : 1, sizeof *cfg->plugins);
    if (!cfg->plugins)
        return;
    for (size_t i = 0; i < list->count; i++) {
        struct voc_yaml_node *item = list->values[i];
        if (item->type != VOC_YAML_MAP) {
            voc_diag_error(diag, cfg->path, item->line, "plugins[%zu] must be a mapping", i);
            continue;
        }
        struct voc_yaml_node *name = voc_yaml_get(item, "name");
        if (!name || name->type != VOC_YAML_SCALAR || !name->scalar[0]) {
            voc_diag_error(diag, cfg->path, item->line, "plugins[%zu] needs a name", i);
            continue;
        }
        struct voc_plugin_config *p = &cfg->plugins[cfg->plugin_count++];
        p->name = strdup(name->scalar);
        p->node = item;
        p->line = item->line;
        struct voc_yaml_node *optional = voc_yaml_get(item, "optional");
        if (optional) {
            if (optional->type == VOC_YAML_SCALAR && strcmp(optional->scalar, "true") == 0)
                p->optional = true;
            else if (!(optional->type == VOC_YAML_SCALAR && strcmp(optional->scalar, "false") == 0))
                voc_diag_error(diag, cfg->path, optional->line,
                               "plugins[%zu].optional must be true or false", i);
        }
        for (size_t j = 0; j + 1 < cfg->plugin_count; j++)
            if (strcmp(cfg->plugins[j].name, p->name) == 0)
                voc_diag_error(diag, cfg->path, p->line, "plugin '%s' is configured twice",
                               p->name);
    }
}

struct voc_config *voc_config_load(const char *path, struct voc_diag *diag)
{
    struct voc_config *cfg = calloc(1, sizeof *cfg);
    if (!cfg)
        return NULL;
    size_t errors_before = diag->errors;
    char *resolved = realpath(path, NULL);
    cfg->path = strdup(path);
    char *dir_copy = strdup(resolved ? resolved : path);
    cfg->base_dir = dir_copy ? strdup(dirname(dir_copy)) : NULL;
    free(dir_copy);
    free(resolved);
    if (!cfg->path || !cfg->base_dir)
        goto fail;
    if (voc_yaml_load_file(path, &cfg->doc, diag) != 0)
        goto fail;
    if (!cfg->doc.root || cfg->doc.root->type != VOC_YAML_MAP) {
        voc_diag_error(diag, path, cfg->doc.root ? cfg->doc.root->line : 0,
                       "the config must be a mapping of keys");
        goto fail;
    }
    struct voc_options_ctx ctx = {.file = path, .base_dir = cfg->base_dir, .diag = diag};
    static const char *const handled_elsewhere[] = {"plugins", NULL};
    voc_options_apply(core_options, cfg->doc.root, cfg, "", handled_elsewhere, &ctx);
    load_plugins(cfg, diag);
    check_auth(cfg, diag);
    check_calendars(cfg, diag);
    check_notifiers(cfg, diag);
    if (cfg->listen.http) {
        char *host = NULL;
        uint16_t port;
        if (voc_parse_listen(cfg->listen.http, &host, &port) != 0)
            voc_diag_error(diag, path, voc_yaml_get(cfg->doc.root, "listen")->line,
                           "listen.http: '%s' is not host:port", cfg->listen.http);
        free(host);
    }
    if (cfg->store.max_map_size && cfg->store.map_size > cfg->store.max_map_size) {
        /* One of the two was written (the defaults agree): point at map_size, else max. */
        int line = item_line(cfg->doc.root, "store", "map_size", 0);
        if (!line)
            line = item_line(cfg->doc.root, "store", "max_map_size", 0);
        voc_diag_error(diag, path, line, "store.map_size is larger than store.max_map_size");
    }
    if (cfg->rules.lib_dir == NULL && cfg->profile) {
        /* scripts/profiles/x.lua -> scripts/lib */
        char *copy = strdup(cfg->profile);
        if (copy) {
            char *profile_dir = dirname(copy);
            size_t len = strlen(profile_dir) + sizeof "/../lib";
            cfg->rules.lib_dir = malloc(len);
            if (cfg->rules.lib_dir)
                snprintf(cfg->rules.lib_dir, len, "%s/../lib", profile_dir);
            free(copy);
        }
    }
    if (diag->errors != errors_before)
        goto fail;
    return cfg;
fail:
    voc_config_free(cfg);
    return NULL;
}

void voc_config_free(struct voc_config *cfg)
{
    if (!cfg)
        return;
    voc_options_free(core_options, cfg);
    for (size_t i = 0; i < cfg->plugin_count; i++)
        free(cfg->plugins[i].name);
    free(cfg->plugins);
    voc_yaml_doc_free(&cfg->doc);
    free(cfg->path);
    free(cfg->base_dir);
    free(cfg);
}
