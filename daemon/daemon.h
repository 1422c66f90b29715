/* The running daemon: everything that lives from start-up to shutdown, and the three
 * things that happen to it as a whole — start, reload (SIGHUP), drain and stop (SIGTERM). */
#ifndef VOC_DAEMON_H
#define VOC_DAEMON_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "diag.h"

struct event;
struct event_base;
struct voc_backup;
struct voc_http;
struct voc_notify;
struct voc_plugin_host;
struct voc_rules;
struct voc_store;
struct voc_textnorm;
struct voc_writer;

struct voc_daemon {
    char *config_path;
    struct voc_config *config;
    struct event_base *base;
    struct voc_store *store;
    struct voc_writer *writer;
    struct voc_http *http;
    struct voc_plugin_host *plugins;
    struct voc_notify *notify;     /* outbox delivery */
    struct voc_textnorm *textnorm; /* for the event loop thread (search) */
    char *profile_name;            /* of the profile the writer runs, for status */
    int64_t started_us;
    bool draining;
    int64_t drain_deadline_us;
    uint64_t drain_bytes_seen;
    int64_t drain_last_input_us;
    struct voc_backup *backup; /* the online backup running now (api.c), NULL = none */
    struct event *sig_term, *sig_int, *sig_hup, *drain_timer, *maintenance_timer, *sla_timer;
    int64_t sla_armed_us; /* deadline the SLA timer is set for; INT64_MAX = none */
    bool sla_fire_pending;
};

/* Load config, profile and plugins, open the store, start writer and listener.
 * Every problem goes to diag. Returns 0 or -1 (then voc_daemon_free what is there). */
int voc_daemon_start(struct voc_daemon *d, const char *config_path, struct voc_diag *diag);
/* Run the event loop until SIGTERM/SIGINT finished draining. Returns the exit code. */
int voc_daemon_run(struct voc_daemon *d);
void voc_daemon_free(struct voc_daemon *d);

/* Re-read config and profile; swap only if all of it is valid. Returns 0 or -1 (diag). */
int voc_daemon_reload(struct voc_daemon *d, struct voc_diag *diag);
/* The same, logged as SIGHUP and the admin API both want it: who asked (`by`, "key=value"),
 * every diagnostic, and the outcome. */
int voc_daemon_reload_logged(struct voc_daemon *d, const char *by, struct voc_diag *diag);

/* `vocd --check`: load config, plugins and profile without opening the store or
 * listening. Returns 0 when valid. */
int voc_daemon_check(const char *config_path, struct voc_diag *diag);

/* Compile the profile named by cfg (NULL profile = no rules, returns 0 with *out NULL). */
int voc_daemon_load_rules(const struct voc_config *cfg, struct voc_rules **out,
                          struct voc_diag *diag);

/* Register the HTTP API routes (api.c). */
void voc_api_register(struct voc_daemon *d);
/* Wait for a running backup's copy to finish and drop it, unanswered (api.c). Called at
 * shutdown before the store closes: the copy thread reads the store's map. */
void voc_api_shutdown(struct voc_daemon *d);

#endif
