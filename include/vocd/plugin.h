/* vocd channel plugin SDK.
 *
 * A channel plugin is a shared object in `plugin_dir` that exports exactly one symbol,
 * `voc_plugin_descriptor` (use VOC_PLUGIN_EXPORT). The core checks its ABI version, validates
 * the plugin's config section against the plugin's option table (so `vocd --check` checks
 * plugin options too), then calls init, start, and at shutdown stop.
 *
 * Everything a plugin needs from the core goes through `struct voc_core_api`, handed to
 * init(). Plugins run on the core's event loop thread: every callback below is called there,
 * and every core call must be made from there.
 *
 * Compatibility: VOC_PLUGIN_ABI_VERSION changes whenever a struct here changes layout or a
 * call changes meaning; the loader refuses a plugin built for another one. New calls are only
 * ever appended to voc_core_api and raise VOC_PLUGIN_ABI_MINOR instead: its `size` field
 * tells a plugin which calls the running core has (VOC_API_HAS), so a plugin built against an
 * older header keeps working, and a newer plugin can fall back on an older core.
 */
#ifndef VOCD_PLUGIN_H
#define VOCD_PLUGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VOC_PLUGIN_ABI_VERSION 1
/* Calls appended to voc_core_api within ABI 1: 0 = up to data_dir, 1 = case_get, notify. */
#define VOC_PLUGIN_ABI_MINOR 1

struct event_base;
struct evhttp_request;

/* ---- Option tables ---------------------------------------------------------------------
 * A plugin (and the core itself) declares its config keys as a static table. The loader
 * fills a struct of `config_size` bytes from the YAML section, applying defaults, rejecting
 * unknown keys and wrong types with file:line. Field types by option type:
 *   STRING, PATH   char *        (PATH: relative paths resolved against the config file)
 *   INT            long long
 *   BOOL           bool
 *   SIZE           uint64_t      ("25MB", "512KiB", "1GB", plain bytes)
 *   DURATION       double        seconds ("500ms", "30s", "5m", "24h", "7d", plain seconds)
 *   ENUM           int           index into `choices`
 *   STRING_LIST    char **       + size_t at count_offset (a scalar is a one-item list)
 *   STRING_MAP     struct voc_kv * + size_t at count_offset (a mapping of strings)
 *   TABLE          an inline struct described by `sub`
 *   TABLE_LIST     void * array of `sub_size` structs + size_t at count_offset
 *   TABLE_MAP      like TABLE_LIST from a mapping; each struct starts with `char *name`
 *                  which receives the key
 */
enum voc_option_type {
    VOC_OPT_STRING = 1,
    VOC_OPT_PATH,
    VOC_OPT_INT,
    VOC_OPT_BOOL,
    VOC_OPT_SIZE,
    VOC_OPT_DURATION,
    VOC_OPT_ENUM,
    VOC_OPT_STRING_LIST,
    VOC_OPT_STRING_MAP,
    VOC_OPT_TABLE,
    VOC_OPT_TABLE_LIST,
    VOC_OPT_TABLE_MAP,
};

#define VOC_OPT_REQUIRED 0x1u

struct voc_kv {
    char *key;
    char *value;
};

struct voc_option {
    const char *name;
    enum voc_option_type type;
    size_t offset;                /* of the field in the target struct */
    const char *default_value;    /* as it would be written in YAML; NULL = none. A
                                     STRING_LIST default is its one item; STRING_MAP and the
                                     TABLE types take no default */
    unsigned flags;               /* VOC_OPT_REQUIRED */
    const char *help;             /* one line, for docs and --check output */
    const struct voc_option *sub; /* TABLE, TABLE_LIST, TABLE_MAP: element options */
    size_t sub_size;              /* TABLE_LIST, TABLE_MAP: element struct size */
    size_t count_offset;          /* STRING_LIST, STRING_MAP, TABLE_LIST, TABLE_MAP */
    const char *const *choices;   /* ENUM: NULL-terminated */
    long long min, max;           /* INT: inclusive bounds when min < max */
};

/* ---- Submitting records ----------------------------------------------------------------- */

enum voc_submit_status {
    VOC_SUBMIT_CREATED = 1, /* durable; case_id is the new case */
    VOC_SUBMIT_EXISTS,      /* channel+external_id (or the event's ref) was already taken:
                               case_id is that case, nothing was written */
    VOC_SUBMIT_APPENDED,    /* an event was appended to case_id, durable */
    VOC_SUBMIT_INVALID,     /* can never be accepted (bad record, unknown case, refused by
                               the lifecycle or a guard): see message */
    VOC_SUBMIT_UNAVAILABLE, /* the store cannot take it now (disk/map full, shutting down):
                               retry later */
};

struct voc_submit_result {
    enum voc_submit_status status;
    uint64_t case_id;       /* CREATED, EXISTS, APPENDED */
    uint32_t event_seq;     /* APPENDED */
    const char *error_code; /* INVALID/UNAVAILABLE: the API error code, e.g. "wrong_type" */
    const char *message;    /* INVALID/UNAVAILABLE: human-readable reason */
    int http_status;        /* the status the HTTP API would answer */
};

/* Called once on the event loop thread when the outcome is known. */
typedef void (*voc_submit_cb)(void *arg, const struct voc_submit_result *result);

/* Optional extras for a submission. */
struct voc_submit_opts {
    /* A key/value pair of the plugin's own state, written in the same transaction as the
     * record (e.g. a file offset checkpoint): after a crash either both are there or
     * neither. Keys are namespaced per plugin by the core. */
    const char *state_key;
    const void *state_value;
    size_t state_value_len;
    /* Extra reference strings under which this case can be found later with
     * find_case(), e.g. e-mail Message-IDs; namespaced by the record's channel. */
    const char *const *refs;
    size_t ref_count;
};

struct voc_plugin; /* the core's handle for one loaded plugin instance */
struct voc_timer;
struct voc_counter;

enum voc_plugin_log_level { VOC_PLOG_DEBUG, VOC_PLOG_INFO, VOC_PLOG_WARN, VOC_PLOG_ERROR };

typedef void (*voc_http_handler)(struct evhttp_request *req, void *arg);
typedef void (*voc_timer_cb)(void *arg);

struct voc_core_api {
    uint32_t abi_version; /* VOC_PLUGIN_ABI_VERSION of the core */
    size_t size;          /* sizeof(struct voc_core_api) in the core */

    struct event_base *(*event_base)(struct voc_plugin *p);
    void (*log)(struct voc_plugin *p, enum voc_plugin_log_level level, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

    /* Submit an intake record (JSON text, CONTRACT.md "Cases and events"). Returns 0 when
     * queued — cb will be called exactly once —, or -1 when the writer is backed up or the
     * daemon is draining (cb is not called; retry later, e.g. answer 503). */
    int (*submit_case)(struct voc_plugin *p, const char *json, size_t len,
                       const struct voc_submit_opts *opts, voc_submit_cb cb, void *arg);
    /* Append an event ({type, actor, note, data} JSON) to an existing case. `ref`, when not
     * NULL, makes the append idempotent: a second event with the same ref on the same
     * channel answers EXISTS. Same return/callback contract as submit_case. */
    int (*submit_event)(struct voc_plugin *p, uint64_t case_id, const char *json, size_t len,
                        const char *channel, const char *ref, voc_submit_cb cb, void *arg);
    /* Find the case an external reference belongs to (an external_id or a ref given in
     * submit opts), on `channel`. Returns 1 and sets *case_id, 0 when unknown, -1 on error. */
    int (*find_case)(struct voc_plugin *p, const char *channel, const char *ref, uint64_t *case_id);
    /* Read the plugin's own state value for key (see voc_submit_opts). Returns the value's
     * full length (copying at most buflen bytes into buf), -1 when absent, -2 on error. */
    long (*state_get)(struct voc_plugin *p, const char *key, void *buf, size_t buflen);
    /* Delete a state key (durably, through the writer); cb may be NULL. */
    int (*state_delete)(struct voc_plugin *p, const char *key, voc_submit_cb cb, void *arg);

    /* Serve `path` (exact) or, when it ends in '/', every path under it, on the core's HTTP
     * listener. The handler owns the request and must answer it (now or later). */
    int (*http_route)(struct voc_plugin *p, const char *path, voc_http_handler handler, void *arg);

    /* A counter exported in /metrics as vocd_plugin_<plugin>_<name>_total. */
    struct voc_counter *(*counter)(struct voc_plugin *p, const char *name, const char *help);
    void (*counter_add)(struct voc_counter *c, uint64_t n);

    /* A timer on the event loop; repeat = call every `seconds` until cancelled. A one-shot
     * timer is over once it fired. Cancelling a handle that fired or was cancelled already
     * (also from inside its own callback) does nothing, so keeping a stale handle is safe.
     * NULL when no timer could be made. */
    struct voc_timer *(*timer_start)(struct voc_plugin *p, double seconds, bool repeat,
                                     voc_timer_cb cb, void *arg);
    void (*timer_cancel)(struct voc_timer *t);

    /* The directory holding the case store; plugins may keep files below it (e.g.
     * attachments) — create a subfolder named after the plugin. */
    const char *(*data_dir)(struct voc_plugin *p);

    /* ---- ABI 1, minor 1: check VOC_API_HAS(api, call) before using these. ---- */

    /* The case as GET /api/v1/cases/{id} shows it (classification, clocks with due_at,
     * events) as JSON text. Returns 1 with *json malloc'd and NUL-terminated (release it
     * with free()) and *len its length, 0 when there is no such case, -1 on error. */
    int (*case_get)(struct voc_plugin *p, uint64_t case_id, char **json, size_t *len);
    /* Queue a notification about case_id on one of the configured `notifiers:`, through the
     * persistent outbox: delivered, retried and given up like the profile's notify actions
     * (docs/notifications.md). `json` is an object:
     *   "notifier"    name of the notifier (required)
     *   "message"     the message; e-mail: the subject after "[VOC-<case_id>] " (required)
     *   "to"          e-mail notifiers only: the recipients, instead of the notifier's `to`
     *   "text"        e-mail notifiers only: the whole body, instead of the case report
     *   "in_reply_to" e-mail notifiers only: Message-ID (without <>) the mail answers
     * `ref`, when not NULL, makes the call idempotent: a second notification with the same
     * ref from this plugin answers EXISTS and queues nothing. The callback gets CREATED
     * (queued, durable), EXISTS, INVALID (no such case or notifier, bad JSON) or
     * UNAVAILABLE. Returns 0 when queued (cb called once) or -1 (writer backed up,
     * draining; cb not called). */
    int (*notify)(struct voc_plugin *p, uint64_t case_id, const char *json, size_t len,
                  const char *ref, voc_submit_cb cb, void *arg);
};

/* Does the running core provide `call`? (calls appended after the plugin's oldest core) */
#define VOC_API_HAS(api, call)                                                                     \
    ((api)->size >= offsetof(struct voc_core_api, call) + sizeof((api)->call) && (api)->call)

struct voc_plugin_descriptor {
    uint32_t abi_version; /* VOC_PLUGIN_ABI_VERSION the plugin was built with */
    const char *name;     /* must equal the `name:` in config */
    const char *version;
    const char *description;

    const struct voc_option *options; /* the plugin's config keys (besides name/optional) */
    size_t config_size;               /* size of the struct the options fill */

    /* Set up with the validated config (owned by the core, valid until stop or until a
     * successful reload replaced it). Store your state in *state. Return 0, or -1 after
     * logging why. */
    int (*init)(struct voc_plugin *p, const struct voc_core_api *api, const void *config,
                void **state);
    /* Start listening / watching. Return 0 or -1. After a failed start the core still
     * calls stop and then destroy, so both must cope with a start that got half way (a
     * listener open, a folder not). */
    int (*start)(void *state);
    /* Stop taking new input; pending submissions still get their callbacks. */
    void (*stop)(void *state);
    /* Free everything. Called after stop (whenever start was called), once all callbacks
     * of the plugin have run; the core removes the plugin's routes and timers itself. */
    void (*destroy)(void *state);
    /* Optional: take a new validated config on SIGHUP. Return 0 to accept (the core frees
     * the old config afterwards), -1 to keep the old one. NULL = needs a restart. */
    int (*reload)(void *state, const void *new_config);
};

#define VOC_PLUGIN_EXPORT(desc)                                                                    \
    __attribute__((visibility("default")))                                                         \
    const struct voc_plugin_descriptor *voc_plugin_descriptor = &(desc)

#ifdef __cplusplus
}
#endif

#endif
