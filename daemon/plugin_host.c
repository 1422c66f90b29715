#include "plugin_host.h"

#include <ctype.h>
#include <dlfcn.h>
#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vocd/plugin.h>

#include "case_ops.h"
#include "case_view.h"
#include "casedb.h"
#include "daemon.h"
#include "http.h"
#include "intake.h"
#include "jsonutil.h"
#include "keys.h"
#include "lifecycle.h"
#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "notify_format.h"
#include "options.h"
#include "store.h"
#include "timeutil.h"
#include "writer.h"

/* A plugin's timer. Plugins never see this struct: their `struct voc_timer *` is a slot
 * number and a generation (see timer_handle), so that cancelling a handle that already
 * fired or was cancelled — even when its slot has been reused since — is recognised and
 * ignored instead of touching freed memory. */
struct plugin_timer {
    struct voc_plugin *plugin;
    struct event *ev;
    voc_timer_cb cb;
    void *arg;
    bool repeat;
    size_t slot;
    struct plugin_timer *next;
};

struct voc_plugin {
    struct voc_plugin_host *host;
    char *name;
    char *log_component; /* "plugin/<name>" */
    void *dl;
    const struct voc_plugin_descriptor *desc;
    void *config;
    void *state;
    bool initialised; /* init succeeded; start is always called right after */
    bool stopped;
    size_t pending; /* submissions whose callback has not run yet */
    struct plugin_timer *timers;
    struct voc_plugin *next_retired;
};

struct voc_plugin_host {
    struct voc_daemon *d;
    struct voc_plugin **plugins;
    size_t count;
    /* Optional plugins whose start failed while submissions of theirs were still open:
     * stopped at once, destroyed with the others once the writer answered everything. */
    struct voc_plugin *retired;
    struct voc_core_api api;
};

static const char *const reserved_keys[] = {"name", "optional", NULL};

static bool plugin_name_valid(const char *name)
{
    if (!name[0] || strlen(name) > 64)
        return false;
    for (const char *c = name; *c; c++)
        if (!(islower((unsigned char)*c) || isdigit((unsigned char)*c) || *c == '_' || *c == '-'))
            return false;
    return true;
}

/* ---- loading ---------------------------------------------------------------------------- */

static void free_plugin_config(const struct voc_plugin_descriptor *desc, void *config)
{
    if (!config)
        return;
    if (desc && desc->options)
        voc_options_free(desc->options, config);
    free(config);
}

/* dlopen the plugin and check what can be checked without running it. */
static int load_object(const struct voc_config *cfg, const struct voc_plugin_config *pc,
                       void **dl_out, const struct voc_plugin_descriptor **desc_out,
                       struct voc_diag *diag)
{
    void (*report)(struct voc_diag *, const char *, int, const char *, ...) =
        pc->optional ? voc_diag_warn : voc_diag_error;
    if (!plugin_name_valid(pc->name)) {
        report(diag, cfg->path, pc->line,
               "plugin name '%s' must be lowercase letters, digits, '_' or '-'", pc->name);
        return -1;
    }
    size_t len = strlen(cfg->plugin_dir) + strlen(pc->name) + 8;
    char *path = malloc(len);
    if (!path)
        return -1;
    snprintf(path, len, "%s/%s.so", cfg->plugin_dir, pc->name);
    void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        report(diag, cfg->path, pc->line, "plugin '%s': cannot load %s: %s%s", pc->name, path,
               dlerror(), pc->optional ? " (optional: skipped)" : "");
        free(path);
        return -1;
    }
    const struct voc_plugin_descriptor *const *sym = dlsym(dl, "voc_plugin_descriptor");
    if (!sym || !*sym) {
        report(diag, cfg->path, pc->line,
               "plugin '%s': %s does not export voc_plugin_descriptor (built without "
               "VOC_PLUGIN_EXPORT?)%s",
               pc->name, path, pc->optional ? " (optional: skipped)" : "");
        dlclose(dl);
        free(path);
        return -1;
    }
    const struct voc_plugin_descriptor *desc = *sym;
    if (desc->abi_version != VOC_PLUGIN_ABI_VERSION) {
        report(diag, cfg->path, pc->line,
               "plugin '%s': %s was built for plugin ABI version %u, this vocd provides ABI "
               "version %u: rebuild it against this vocd's <vocd/plugin.h>%s",
               pc->name, path, desc->abi_version, VOC_PLUGIN_ABI_VERSION,
               pc->optional ? " (optional: skipped)" : "");
        dlclose(dl);
        free(path);
        return -1;
    }
    if (!desc->name || strcmp(desc->name, pc->name) != 0 || !desc->init) {
        report(diag, cfg->path, pc->line, "plugin '%s': %s describes itself as '%s'%s", pc->name,
               path, desc->name ? desc->name : "(no name)", desc->init ? "" : " and has no init()");
        dlclose(dl);
        free(path);
        return -1;
    }
    free(path);
    *dl_out = dl;
    *desc_out = desc;
    return 0;
}

/* Validate the plugin's section against its option table into a fresh config struct. */
static int parse_plugin_config(const struct voc_config *cfg, const struct voc_plugin_config *pc,
                               const struct voc_plugin_descriptor *desc, void **out,
                               struct voc_diag *diag)
{
    void *config = calloc(1, desc->config_size ? desc->config_size : 1);
    if (!config)
        return -1;
    struct voc_diag local;
    voc_diag_init(&local);
    struct voc_options_ctx ctx = {.file = cfg->path, .base_dir = cfg->base_dir, .diag = &local};
    char where[96];
    snprintf(where, sizeof where, "plugins.%s", pc->name);
    static const struct voc_option no_options[] = {{0}};
    int rc = voc_options_apply(desc->options ? desc->options : no_options, pc->node, config, where,
                               reserved_keys, &ctx);
    if (rc == 0 && local.errors == 0) {
        voc_diag_merge(diag, &local);
        voc_diag_free(&local);
        *out = config;
        return 0;
    }
    if (pc->optional) {
        /* An optional plugin with a bad section is skipped, loudly. */
        for (size_t i = 0; i < local.count; i++)
            voc_diag_warn(diag, NULL, 0, "%s (optional plugin '%s': skipped)", local.messages[i],
                          pc->name);
    } else {
        voc_diag_merge(diag, &local);
    }
    voc_diag_free(&local);
    free_plugin_config(desc, config);
    return -1;
}

/* ---- core calls --------------------------------------------------------------------------- */

static struct event_base *api_event_base(struct voc_plugin *p)
{
    return p->host->d->base;
}

static void api_log(struct voc_plugin *p, enum voc_plugin_log_level level, const char *fmt, ...)
{
    char message[3000];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    static const enum voc_log_level map[] = {VOC_LOG_DEBUG, VOC_LOG_INFO, VOC_LOG_WARN,
                                             VOC_LOG_ERROR};
    voc_log(level <= VOC_PLOG_ERROR ? map[level] : VOC_LOG_ERROR, p->log_component, "%s", message);
}

struct pending_submit {
    struct voc_plugin *plugin;
    voc_submit_cb cb;
    void *arg;
    /* for refusals decided before queueing */
    struct voc_err err;
};

static void on_submit_result(void *arg, const struct voc_submit_result *r)
{
    struct pending_submit *ps = arg;
    ps->plugin->pending--;
    if (ps->cb)
        ps->cb(ps->arg, r);
    free(ps);
}

static void deliver_refusal(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct pending_submit *ps = arg;
    struct voc_submit_result r = {.status = VOC_SUBMIT_INVALID,
                                  .error_code = ps->err.code,
                                  .message = ps->err.message,
                                  .http_status = ps->err.status};
    on_submit_result(ps, &r);
}

static struct pending_submit *pending_new(struct voc_plugin *p, voc_submit_cb cb, void *arg)
{
    struct pending_submit *ps = calloc(1, sizeof *ps);
    if (!ps)
        return NULL;
    ps->plugin = p;
    ps->cb = cb;
    ps->arg = arg;
    p->pending++;
    return ps;
}

/* Refusals are delivered from the loop, never from inside submit: a plugin must not be
 * called back while it is still in its own call. */
static int refuse_later(struct pending_submit *ps)
{
    struct timeval now = {0, 0};
    if (event_base_once(ps->plugin->host->d->base, -1, EV_TIMEOUT, deliver_refusal, ps, &now)) {
        ps->plugin->pending--;
        free(ps);
        return -1;
    }
    return 0;
}

static bool accepting(struct voc_plugin *p)
{
    return !p->stopped && !p->host->d->draining;
}

static int api_submit_case(struct voc_plugin *p, const char *json, size_t len,
                           const struct voc_submit_opts *opts, voc_submit_cb cb, void *arg)
{
    if (!accepting(p))
        return -1;
    struct pending_submit *ps = pending_new(p, cb, arg);
    if (!ps)
        return -1;
    json_t *record = NULL, *intake = NULL;
    if (voc_json_parse_object(json, len, &record, &ps->err) != 0 ||
        voc_intake_validate(record, p->name, voc_now_us(), &intake, &ps->err) != 0) {
        json_decref(record);
        return refuse_later(ps);
    }
    json_decref(record);
    struct voc_actor actor = {.name = p->name};
    if (voc_ops_create_case(p->host->d->writer, intake, &actor, opts, p->name, on_submit_result,
                            ps) != 0) {
        p->pending--;
        free(ps);
        return -1;
    }
    return 0;
}

static bool any_profile_type(const char *type, void *arg)
{
    (void)type;
    (void)arg;
    return true; /* the writer checks profile types against the profile it runs */
}

static int api_submit_event(struct voc_plugin *p, uint64_t case_id, const char *json, size_t len,
                            const char *channel, const char *ref, voc_submit_cb cb, void *arg)
{
    if (!accepting(p))
        return -1;
    struct pending_submit *ps = pending_new(p, cb, arg);
    if (!ps)
        return -1;
    json_t *body = NULL, *event = NULL;
    if (voc_json_parse_object(json, len, &body, &ps->err) != 0 ||
        voc_event_validate(body, any_profile_type, NULL, &event, &ps->err) != 0) {
        json_decref(body);
        return refuse_later(ps);
    }
    json_decref(body);
    struct voc_actor actor = {.name = p->name};
    if (voc_ops_append_event(p->host->d->writer, case_id, event, &actor,
                             channel ? channel : p->name, ref, on_submit_result, ps) != 0) {
        p->pending--;
        free(ps);
        return -1;
    }
    return 0;
}

static int api_find_case(struct voc_plugin *p, const char *channel, const char *ref,
                         uint64_t *case_id)
{
    struct voc_txn txn;
    if (voc_txn_begin_read(p->host->d->store, &txn) != 0)
        return -1;
    int rc = voc_casedb_ref_get(&txn, channel, ref, case_id);
    voc_txn_abort(&txn);
    return rc == 0 ? 1 : rc == MDB_NOTFOUND ? 0 : -1;
}

static long api_state_get(struct voc_plugin *p, const char *key, void *buf, size_t buflen)
{
    struct voc_txn txn;
    if (voc_txn_begin_read(p->host->d->store, &txn) != 0)
        return -2;
    struct voc_key k;
    voc_ops_state_key(&k, p->name, key);
    MDB_val v;
    int rc = voc_txn_get(&txn, VOC_DB_PLUGIN_STATE, k.buf, k.len, &v);
    long result;
    if (rc == 0) {
        memcpy(buf, v.mv_data, v.mv_size < buflen ? v.mv_size : buflen);
        result = (long)v.mv_size;
    } else {
        result = rc == MDB_NOTFOUND ? -1 : -2;
    }
    voc_txn_abort(&txn);
    return result;
}

static int api_state_delete(struct voc_plugin *p, const char *key, voc_submit_cb cb, void *arg)
{
    struct pending_submit *ps = pending_new(p, cb, arg);
    if (!ps)
        return -1;
    if (voc_ops_set_state(p->host->d->writer, p->name, key, NULL, 0, on_submit_result, ps)) {
        p->pending--;
        free(ps);
        return -1;
    }
    return 0;
}

static int api_http_route(struct voc_plugin *p, const char *path, voc_http_handler handler,
                          void *arg)
{
    if (path[0] != '/' || strncmp(path, "/api/", 5) == 0 || strcmp(path, "/metrics") == 0 ||
        strcmp(path, "/healthz") == 0) {
        voc_error(p->log_component, "route %s is reserved for the core", path);
        return -1;
    }
    if (voc_http_route(p->host->d->http, path, handler, arg, p->name) != 0) {
        voc_error(p->log_component, "route %s is already taken", path);
        return -1;
    }
    return 0;
}

static struct voc_counter *api_counter(struct voc_plugin *p, const char *name, const char *help)
{
    char full[160];
    snprintf(full, sizeof full, "vocd_plugin_%s_%s_total", p->name, name);
    for (char *c = full; *c; c++)
        if (!(isalnum((unsigned char)*c) || *c == '_'))
            *c = '_';
    return (struct voc_counter *)voc_metric_register(full, NULL, VOC_METRIC_COUNTER, help);
}

static void api_counter_add(struct voc_counter *c, uint64_t n)
{
    voc_metric_add((struct voc_metric *)c, n);
}

/* Handle = (generation << TIMER_SLOT_BITS) | (slot + 1): never NULL, and stale once the
 * slot's generation moved on. Every call runs on the loop thread, so no locking. */
#define TIMER_SLOT_BITS 24
#define TIMER_SLOT_MAX (((size_t)1 << TIMER_SLOT_BITS) - 1)

#define TIMER_GENERATION_MASK (UINTPTR_MAX >> TIMER_SLOT_BITS)

struct timer_slot {
    struct plugin_timer *timer; /* NULL = free */
    uintptr_t generation;       /* of the timer in it */
};

static struct timer_slot *timer_slots;
static size_t timer_slot_count, timer_slot_cap, timer_slots_used;
/* One counter for every timer ever started, so a handle stays unique even when the table
 * was given back and built again. */
static uintptr_t timer_generation;

static struct voc_timer *timer_handle(size_t slot)
{
    uintptr_t h = (timer_slots[slot].generation << TIMER_SLOT_BITS) | (uintptr_t)(slot + 1);
    return (struct voc_timer *)h;
}

static struct plugin_timer *timer_lookup(const struct voc_timer *handle)
{
    uintptr_t h = (uintptr_t)handle;
    size_t slot = (size_t)(h & TIMER_SLOT_MAX);
    if (slot == 0 || slot > timer_slot_count)
        return NULL;
    slot--;
    if (!timer_slots[slot].timer || timer_slots[slot].generation != h >> TIMER_SLOT_BITS)
        return NULL;
    return timer_slots[slot].timer;
}

static int timer_slot_take(struct plugin_timer *t)
{
    size_t slot = timer_slot_count;
    if (timer_slots_used < timer_slot_count) {
        for (slot = 0; slot < timer_slot_count && timer_slots[slot].timer; slot++)
            ;
    }
    if (slot == timer_slot_count) {
        if (slot >= TIMER_SLOT_MAX)
            return -1;
        if (timer_slot_count == timer_slot_cap) {
            size_t cap = timer_slot_cap ? timer_slot_cap * 2 : 16;
            struct timer_slot *grown = realloc(timer_slots, cap * sizeof *grown);
            if (!grown)
                return -1;
            timer_slots = grown;
            timer_slot_cap = cap;
        }
        timer_slots[timer_slot_count++] = (struct timer_slot){0};
    }
    timer_generation = (timer_generation + 1) & TIMER_GENERATION_MASK;
    timer_slots[slot].timer = t;
    timer_slots[slot].generation = timer_generation;
    timer_slots_used++;
    t->slot = slot;
    return 0;
}

/* Unlink from the plugin and the slot table and free; the handle is stale afterwards. */
static void timer_release(struct plugin_timer *t)
{
    for (struct plugin_timer **pp = &t->plugin->timers; *pp; pp = &(*pp)->next) {
        if (*pp == t) {
            *pp = t->next;
            break;
        }
    }
    timer_slots[t->slot].timer = NULL;
    timer_slots_used--;
    if (timer_slots_used == 0) {
        /* The last timer went (unload, or no timers in use): give the table back. */
        free(timer_slots);
        timer_slots = NULL;
        timer_slot_count = timer_slot_cap = 0;
    }
    event_free(t->ev);
    free(t);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct plugin_timer *t = arg;
    if (!t->repeat) {
        /* One-shot: over once it fires. Released before the call, so the callback may
         * start a new timer or cancel this handle (a no-op now) as it likes. */
        voc_timer_cb cb = t->cb;
        void *cb_arg = t->arg;
        timer_release(t);
        cb(cb_arg);
        return;
    }
    /* A repeating timer cancelled inside its callback is freed there: touch nothing after. */
    t->cb(t->arg);
}

static struct voc_timer *api_timer_start(struct voc_plugin *p, double seconds, bool repeat,
                                         voc_timer_cb cb, void *arg)
{
    if (!cb)
        return NULL;
    struct plugin_timer *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->plugin = p;
    t->cb = cb;
    t->arg = arg;
    t->repeat = repeat;
    t->ev = event_new(p->host->d->base, -1, repeat ? EV_PERSIST : 0, on_timer, t);
    if (!(seconds >= 0)) /* negative or NaN */
        seconds = 0;
    if (seconds > 1e9)
        seconds = 1e9;
    struct timeval tv = {(time_t)seconds, (suseconds_t)((seconds - (double)(time_t)seconds) * 1e6)};
    if (!t->ev || timer_slot_take(t) != 0) {
        if (t->ev)
            event_free(t->ev);
        free(t);
        return NULL;
    }
    t->next = p->timers;
    p->timers = t;
    if (event_add(t->ev, &tv) != 0) {
        timer_release(t);
        return NULL;
    }
    return timer_handle(t->slot);
}

static void api_timer_cancel(struct voc_timer *handle)
{
    struct plugin_timer *t = timer_lookup(handle);
    if (t)
        timer_release(t);
}

static const char *api_data_dir(struct voc_plugin *p)
{
    return voc_store_path(p->host->d->store);
}

static int api_case_get(struct voc_plugin *p, uint64_t case_id, char **json, size_t *len)
{
    *json = NULL;
    *len = 0;
    struct voc_txn txn;
    if (voc_txn_begin_read(p->host->d->store, &txn) != 0)
        return -1;
    json_t *record = NULL, *events = NULL;
    int rc = voc_casedb_get(&txn, case_id, &record);
    if (rc == 0)
        rc = voc_casedb_events(&txn, case_id, &events);
    voc_txn_abort(&txn);
    if (rc != 0) {
        json_decref(record);
        return rc == MDB_NOTFOUND ? 0 : -1;
    }
    json_t *view = voc_case_view(record, events, voc_now_us());
    json_decref(record);
    json_decref(events);
    *json = view ? voc_json_dump(view, len) : NULL;
    json_decref(view);
    return *json ? 1 : -1;
}

/* ---- notifications queued by plugins ---------------------------------------------------- */

/* Limits on what a plugin may put into one notification. */
#define NOTIFY_MAX_MESSAGE (64 * 1024)
#define NOTIFY_MAX_TEXT (256 * 1024)
#define NOTIFY_MAX_REF 256

struct notify_job {
    struct voc_job base;
    struct pending_submit *ps;
    uint64_t case_id;
    json_t *entry;
    char *ref_channel; /* "notify:<plugin>": not a valid intake channel, so never taken */
    char *ref;
    bool exists;
};

static int notify_run(struct voc_job *base, struct voc_write_ctx *ctx)
{
    struct notify_job *j = (struct notify_job *)base;
    struct voc_txn *txn = ctx->txn;
    /* Depends only on the job and the store: the writer may run it again. */
    j->exists = false;
    if (j->ref) {
        uint64_t owner;
        int rc = voc_casedb_ref_get(txn, j->ref_channel, j->ref, &owner);
        if (rc == 0) {
            j->exists = true;
            return 0;
        }
        if (rc != MDB_NOTFOUND)
            return -1;
    }
    json_t *record = NULL;
    int rc = voc_casedb_get(txn, j->case_id, &record);
    json_decref(record);
    if (rc == MDB_NOTFOUND) {
        voc_err_set(&base->err, 404, "not_found", "no case %llu", (unsigned long long)j->case_id);
        return -1;
    }
    if (rc != 0)
        return -1;
    if (voc_notify_outbox_put(txn, ctx->now_us, j->case_id, 0, j->entry, NULL) != 0)
        return -1;
    if (j->ref && voc_casedb_ref_put(txn, j->ref_channel, j->ref, j->case_id) != 0)
        return -1;
    return txn->error ? -1 : 0;
}

static void notify_done(struct voc_job *base)
{
    struct notify_job *j = (struct notify_job *)base;
    struct voc_submit_result r = {.case_id = j->case_id};
    switch (base->outcome) {
    case VOC_JOB_COMMITTED:
        r.status = j->exists ? VOC_SUBMIT_EXISTS : VOC_SUBMIT_CREATED;
        r.http_status = j->exists ? 200 : 201;
        break;
    case VOC_JOB_REFUSED:
        r.status = VOC_SUBMIT_INVALID;
        r.error_code = base->err.code;
        r.message = base->err.message;
        r.http_status = base->err.status;
        break;
    default:
        r.status = VOC_SUBMIT_UNAVAILABLE;
        r.error_code = base->err.code;
        r.message = base->err.message;
        r.http_status = 503;
        break;
    }
    on_submit_result(j->ps, &r);
    json_decref(j->entry);
    free(j->ref_channel);
    free(j->ref);
    free(j);
}

static const struct voc_notifier_config *configured_notifier(const struct voc_config *cfg,
                                                             const char *name)
{
    for (size_t i = 0; name && i < cfg->notifier_count; i++)
        if (cfg->notifiers[i].name && strcmp(cfg->notifiers[i].name, name) == 0)
            return &cfg->notifiers[i];
    return NULL;
}

/* Check what a plugin asks to send before it reaches the outbox. 0, or -1 with err set. */
static int notify_validate(const struct voc_config *cfg, json_t *req, struct voc_err *err)
{
    const char *key;
    json_t *value;
    json_object_foreach (req, key, value) {
        if (strcmp(key, "notifier") != 0 && strcmp(key, "message") != 0 && strcmp(key, "to") != 0 &&
            strcmp(key, "text") != 0 && strcmp(key, "in_reply_to") != 0) {
            voc_err_set(err, 400, "unknown_field", "unknown field '%s'", key);
            return -1;
        }
    }
    const char *name = voc_json_str(req, "notifier");
    const struct voc_notifier_config *n = configured_notifier(cfg, name);
    if (!name || !n) {
        voc_err_set(err, 400, "unknown_notifier", "no notifier named '%.200s' is configured",
                    name ? name : "(missing)");
        return -1;
    }
    json_t *message = json_object_get(req, "message");
    if (!json_is_string(message) || json_string_length(message) > NOTIFY_MAX_MESSAGE) {
        voc_err_set(err, 400, "wrong_type", "'message' must be a string of at most %d bytes",
                    NOTIFY_MAX_MESSAGE);
        return -1;
    }
    bool mail_only = json_object_get(req, "to") || json_object_get(req, "text") ||
                     json_object_get(req, "in_reply_to");
    if (mail_only && n->type != VOC_NOTIFIER_EMAIL) {
        voc_err_set(err, 400, "wrong_notifier",
                    "'to', 'text' and 'in_reply_to' need an e-mail notifier, '%.200s' is not one",
                    name);
        return -1;
    }
    json_t *to = json_object_get(req, "to");
    if (to) {
        if (!json_is_array(to) || json_array_size(to) == 0 ||
            json_array_size(to) > VOC_NOTIFY_MAX_ENTRY_RECIPIENTS) {
            voc_err_set(err, 400, "wrong_type", "'to' must be a list of 1 to %d addresses",
                        VOC_NOTIFY_MAX_ENTRY_RECIPIENTS);
            return -1;
        }
        size_t i;
        json_t *addr;
        json_array_foreach (to, i, addr) {
            char *angle =
                json_is_string(addr) ? voc_mail_angle_addr(json_string_value(addr)) : NULL;
            bool usable = angle && strchr(angle, '@');
            free(angle);
            if (!usable) {
                voc_err_set(err, 400, "invalid_address", "'to'[%zu] is not an e-mail address", i);
                return -1;
            }
        }
    }
    json_t *text = json_object_get(req, "text");
    if (text && (!json_is_string(text) || json_string_length(text) > NOTIFY_MAX_TEXT)) {
        voc_err_set(err, 400, "wrong_type", "'text' must be a string of at most %d bytes",
                    NOTIFY_MAX_TEXT);
        return -1;
    }
    json_t *reply = json_object_get(req, "in_reply_to");
    if (reply) {
        if (!voc_mail_message_id_ok(json_string_value(reply))) {
            voc_err_set(err, 400, "wrong_type",
                        "'in_reply_to' must be a Message-ID without <>, in printable ASCII");
            return -1;
        }
    }
    return 0;
}

static int api_notify(struct voc_plugin *p, uint64_t case_id, const char *json, size_t len,
                      const char *ref, voc_submit_cb cb, void *arg)
{
    if (!accepting(p))
        return -1;
    struct pending_submit *ps = pending_new(p, cb, arg);
    if (!ps)
        return -1;
    json_t *req = NULL;
    if (voc_json_parse_object(json, len, &req, &ps->err) != 0 ||
        notify_validate(p->host->d->config, req, &ps->err) != 0) {
        json_decref(req);
        return refuse_later(ps);
    }
    if (ref && (!ref[0] || strlen(ref) > NOTIFY_MAX_REF || !voc_utf8_valid(ref, strlen(ref)))) {
        json_decref(req);
        voc_err_set(&ps->err, 400, "wrong_type", "ref must be 1 to %d bytes of UTF-8",
                    NOTIFY_MAX_REF);
        return refuse_later(ps);
    }
    struct notify_job *j = calloc(1, sizeof *j);
    size_t chan_len = strlen(p->name) + 8;
    char *channel = malloc(chan_len);
    if (!j || !channel) {
        free(j);
        free(channel);
        json_decref(req);
        p->pending--;
        free(ps);
        return -1;
    }
    snprintf(channel, chan_len, "notify:%s", p->name);
    j->base.run = notify_run;
    j->base.done = notify_done;
    j->ps = ps;
    j->case_id = case_id;
    j->entry = req;
    json_object_set_new(req, "source", json_string(p->log_component));
    j->ref_channel = channel;
    j->ref = ref ? strdup(ref) : NULL;
    if ((ref && !j->ref) || voc_writer_submit(p->host->d->writer, &j->base) != 0) {
        json_decref(j->entry);
        free(j->ref_channel);
        free(j->ref);
        free(j);
        p->pending--;
        free(ps);
        return -1;
    }
    return 0;
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

static void plugin_stop(struct voc_plugin *p)
{
    /* stop() also after a failed start(): it undoes what start got done (an open listener
     * would otherwise call into the state destroy() frees). */
    if (p->initialised && !p->stopped && p->desc->stop)
        p->desc->stop(p->state);
    p->stopped = true;
}

static void plugin_free(struct voc_plugin *p)
{
    if (!p)
        return;
    plugin_stop(p);
    if (p->initialised && p->desc->destroy)
        p->desc->destroy(p->state);
    while (p->timers)
        timer_release(p->timers);
    if (p->host && p->host->d->http)
        voc_http_unroute_owner(p->host->d->http, p->name);
    free_plugin_config(p->desc, p->config);
    if (p->dl)
        dlclose(p->dl);
    free(p->name);
    free(p->log_component);
    free(p);
}

/* A plugin whose start failed: stopped and unrouted now; destroyed now, or — when the core
 * still owes it callbacks (it submitted something during start) — at voc_plugins_free,
 * after the writer answered them. */
static void plugin_retire(struct voc_plugin_host *host, struct voc_plugin *p)
{
    plugin_stop(p);
    while (p->timers)
        timer_release(p->timers);
    if (host->d->http)
        voc_http_unroute_owner(host->d->http, p->name);
    if (p->pending == 0) {
        plugin_free(p);
        return;
    }
    p->next_retired = host->retired;
    host->retired = p;
}

static void fill_api(struct voc_core_api *api)
{
    *api = (struct voc_core_api){
        .abi_version = VOC_PLUGIN_ABI_VERSION,
        .size = sizeof(struct voc_core_api),
        .event_base = api_event_base,
        .log = api_log,
        .submit_case = api_submit_case,
        .submit_event = api_submit_event,
        .find_case = api_find_case,
        .state_get = api_state_get,
        .state_delete = api_state_delete,
        .http_route = api_http_route,
        .counter = api_counter,
        .counter_add = api_counter_add,
        .timer_start = api_timer_start,
        .timer_cancel = api_timer_cancel,
        .data_dir = api_data_dir,
        .case_get = api_case_get,
        .notify = api_notify,
    };
}

int voc_plugins_start(struct voc_daemon *d, struct voc_plugin_host **out, struct voc_diag *diag)
{
    const struct voc_config *cfg = d->config;
    struct voc_plugin_host *host = calloc(1, sizeof *host);
    if (!host)
        return -1;
    host->d = d;
    fill_api(&host->api);
    host->plugins = calloc(cfg->plugin_count ? cfg->plugin_count : 1, sizeof *host->plugins);
    if (!host->plugins) {
        free(host);
        return -1;
    }
    *out = host;
    for (size_t i = 0; i < cfg->plugin_count; i++) {
        const struct voc_plugin_config *pc = &cfg->plugins[i];
        struct voc_plugin *p = calloc(1, sizeof *p);
        if (!p)
            return -1;
        p->host = host;
        p->name = strdup(pc->name);
        size_t n = strlen(pc->name) + 8;
        p->log_component = malloc(n);
        snprintf(p->log_component, n, "plugin/%s", pc->name);
        if (load_object(cfg, pc, &p->dl, &p->desc, diag) != 0 ||
            parse_plugin_config(cfg, pc, p->desc, &p->config, diag) != 0) {
            plugin_free(p);
            if (pc->optional)
                continue;
            return -1;
        }
        if (p->desc->init(p, &host->api, p->config, &p->state) != 0) {
            (pc->optional ? voc_diag_warn : voc_diag_error)(
                diag, cfg->path, pc->line, "plugin '%s': init failed (see the log above)%s",
                pc->name, pc->optional ? " (optional: skipped)" : "");
            plugin_free(p);
            if (pc->optional)
                continue;
            return -1;
        }
        p->initialised = true;
        if (p->desc->start && p->desc->start(p->state) != 0) {
            (pc->optional ? voc_diag_warn : voc_diag_error)(
                diag, cfg->path, pc->line, "plugin '%s': start failed (see the log above)%s",
                pc->name, pc->optional ? " (optional: skipped)" : "");
            plugin_retire(host, p);
            if (pc->optional)
                continue;
            return -1;
        }
        host->plugins[host->count++] = p;
        voc_info("plugins", "started plugin=%s version=%s", p->name,
                 p->desc->version ? p->desc->version : "?");
    }
    return 0;
}

int voc_plugins_check(const struct voc_config *cfg, struct voc_diag *diag)
{
    int rc = 0;
    for (size_t i = 0; i < cfg->plugin_count; i++) {
        const struct voc_plugin_config *pc = &cfg->plugins[i];
        void *dl = NULL;
        const struct voc_plugin_descriptor *desc = NULL;
        void *config = NULL;
        if (load_object(cfg, pc, &dl, &desc, diag) != 0) {
            rc |= pc->optional ? 0 : -1;
            continue;
        }
        if (parse_plugin_config(cfg, pc, desc, &config, diag) != 0)
            rc |= pc->optional ? 0 : -1;
        free_plugin_config(desc, config);
        dlclose(dl);
    }
    return rc;
}

void voc_plugins_describe(const struct voc_config *cfg, FILE *out)
{
    for (size_t i = 0; i < cfg->plugin_count; i++) {
        const struct voc_plugin_config *pc = &cfg->plugins[i];
        void *dl = NULL;
        const struct voc_plugin_descriptor *desc = NULL;
        struct voc_diag diag;
        voc_diag_init(&diag);
        if (load_object(cfg, pc, &dl, &desc, &diag) != 0) {
            for (size_t k = 0; k < diag.count; k++)
                fprintf(stderr, "%s\n", diag.messages[k]);
            voc_diag_free(&diag);
            continue;
        }
        voc_diag_free(&diag);
        fprintf(out,
                "\n### plugin `%s` %s\n\n%s\n\n| key | type | default | meaning |\n"
                "|---|---|---|---|\n",
                pc->name, desc->version ? desc->version : "",
                desc->description ? desc->description : "");
        fprintf(out, "| `name` | string | required | `%s` |\n", pc->name);
        fprintf(out, "| `optional` | boolean | `false` | skip the plugin with a warning when it "
                     "cannot load |\n");
        if (desc->options)
            voc_options_describe(desc->options, "", out);
        dlclose(dl);
    }
}

struct voc_plugin_reload {
    size_t count;
    struct voc_plugin *plugin[64];
    void *config[64];
};

int voc_plugins_prepare_reload(struct voc_plugin_host *host, const struct voc_config *next,
                               struct voc_plugin_reload **out, struct voc_diag *diag)
{
    struct voc_plugin_reload *r = calloc(1, sizeof *r);
    if (!r)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < next->plugin_count; i++) {
        const struct voc_plugin_config *pc = &next->plugins[i];
        struct voc_plugin *p = NULL;
        for (size_t j = 0; j < host->count; j++)
            if (strcmp(host->plugins[j]->name, pc->name) == 0)
                p = host->plugins[j];
        if (!p) {
            voc_diag_warn(diag, next->path, pc->line,
                          "plugin '%s' is new: plugins are added at the next restart", pc->name);
            continue;
        }
        void *config = NULL;
        if (parse_plugin_config(next, pc, p->desc, &config, diag) != 0) {
            rc = -1;
            continue;
        }
        if (!p->desc->reload) {
            voc_diag_warn(diag, next->path, pc->line,
                          "plugin '%s' cannot reload: its settings change at the next restart",
                          pc->name);
            free_plugin_config(p->desc, config);
            continue;
        }
        if (r->count == sizeof r->plugin / sizeof r->plugin[0]) {
            free_plugin_config(p->desc, config);
            continue;
        }
        r->plugin[r->count] = p;
        r->config[r->count++] = config;
    }
    for (size_t j = 0; j < host->count; j++) {
        bool kept = false;
        for (size_t i = 0; i < next->plugin_count; i++)
            kept |= strcmp(host->plugins[j]->name, next->plugins[i].name) == 0;
        if (!kept)
            voc_diag_warn(diag, next->path, 0,
                          "plugin '%s' was removed: it keeps running until the next restart",
                          host->plugins[j]->name);
    }
    if (rc != 0) {
        voc_plugins_abort_reload(r);
        return -1;
    }
    *out = r;
    return 0;
}

void voc_plugins_commit_reload(struct voc_plugin_host *host, struct voc_plugin_reload *r)
{
    (void)host;
    for (size_t i = 0; i < r->count; i++) {
        struct voc_plugin *p = r->plugin[i];
        if (p->desc->reload(p->state, r->config[i]) == 0) {
            free_plugin_config(p->desc, p->config);
            p->config = r->config[i];
            voc_info("plugins", "reloaded plugin=%s", p->name);
        } else {
            voc_error("plugins", "plugin refused its new settings, keeps the old ones plugin=%s",
                      p->name);
            free_plugin_config(p->desc, r->config[i]);
        }
    }
    free(r);
}

void voc_plugins_abort_reload(struct voc_plugin_reload *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->count; i++)
        free_plugin_config(r->plugin[i]->desc, r->config[i]);
    free(r);
}

void voc_plugins_stop(struct voc_plugin_host *host)
{
    if (!host)
        return;
    for (size_t i = 0; i < host->count; i++) {
        plugin_stop(host->plugins[i]);
    }
}

void voc_plugins_free(struct voc_plugin_host *host)
{
    if (!host)
        return;
    voc_plugins_stop(host);
    for (size_t i = 0; i < host->count; i++) {
        if (host->plugins[i]->pending)
            voc_warn("plugins", "plugin unloaded with unanswered submissions plugin=%s count=%zu",
                     host->plugins[i]->name, host->plugins[i]->pending);
        plugin_free(host->plugins[i]);
    }
    while (host->retired) {
        struct voc_plugin *p = host->retired;
        host->retired = p->next_retired;
        plugin_free(p);
    }
    free(host->plugins);
    free(host);
}

size_t voc_plugins_count(const struct voc_plugin_host *host)
{
    return host ? host->count : 0;
}

const char *voc_plugins_name(const struct voc_plugin_host *host, size_t i)
{
    return host->plugins[i]->name;
}
