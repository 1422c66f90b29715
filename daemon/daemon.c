#include "daemon.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "case_ops.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "plugin_host.h"
#include "policy.h"
#include "sla.h"
#include "case_ops.h"
#include "rules.h"
#include "store.h"
#include "textnorm.h"
#include "timeutil.h"
#include "version.h"
#include "writer.h"

/* How often the drain timer looks whether in-flight work is done. */
#define DRAIN_POLL_MS 20
/* Drain ends once no byte has arrived for this long (and nothing is in flight). */
#define DRAIN_QUIET_MS 200
/* SIGTERM waits at most this long for clients that do not read their replies. */
#define DRAIN_TIMEOUT_S 30
/* Housekeeping: stale LMDB reader slots of dead processes. */
#define MAINTENANCE_INTERVAL_S 60

int voc_daemon_load_rules(const struct voc_config *cfg, struct voc_rules **out,
                          struct voc_diag *diag)
{
    *out = NULL;
    if (!cfg->profile)
        return 0;
    const char **calendars = calloc(cfg->calendar_count + 1, sizeof *calendars);
    if (!calendars)
        return -1;
    for (size_t i = 0; i < cfg->calendar_count; i++)
        calendars[i] = cfg->calendars[i].name;
    struct voc_rules_limits limits = {.max_instructions = (uint64_t)cfg->rules.max_instructions,
                                      .max_memory = (size_t)cfg->rules.max_memory};
    int rc = voc_rules_load(cfg->profile, cfg->rules.lib_dir, &limits, calendars, out, diag);
    free(calendars);
    return rc;
}

static void set_profile_name(struct voc_daemon *d, struct voc_rules *rules)
{
    free(d->profile_name);
    d->profile_name = rules ? strdup(voc_rules_name(rules)) : NULL;
}

/* Gauges computed when /metrics is read. */
static void collect_core_metrics(struct evbuffer *out, void *arg)
{
    struct voc_daemon *d = arg;
    struct voc_store_info info;
    if (voc_store_info(d->store, &info) == 0) {
        voc_metrics_write_gauge(out, "vocd_cases", NULL, "Cases in the store",
                                (double)info.entries[VOC_DB_CASES]);
        voc_metrics_write_gauge(out, "vocd_events", NULL, "Events in the store",
                                (double)info.entries[VOC_DB_EVENTS]);
        voc_metrics_write_gauge(out, "vocd_store_map_size_bytes", NULL,
                                "LMDB map size (grows when full)", (double)info.map_size);
        voc_metrics_write_gauge(out, "vocd_store_used_bytes", NULL, "LMDB pages in use",
                                (double)info.used_bytes);
        voc_metrics_write_gauge(out, "vocd_store_readers", NULL, "LMDB reader slots in use",
                                (double)info.readers_used);
    }
    struct voc_txn txn;
    struct voc_sla_counts counts;
    if (voc_txn_begin_read(d->store, &txn) == 0) {
        if (voc_sla_open_counts(&txn, &counts) == 0) {
            const char *help = "Open SLA clocks by status";
            voc_metrics_write_gauge(out, "vocd_clocks_open", "status=\"running\"", help,
                                    (double)counts.running);
            voc_metrics_write_gauge(out, "vocd_clocks_open", "status=\"paused\"", NULL,
                                    (double)counts.paused);
            voc_metrics_write_gauge(out, "vocd_clocks_open", "status=\"warning\"", NULL,
                                    (double)counts.warning);
            voc_metrics_write_gauge(out, "vocd_clocks_open", "status=\"breached\"", NULL,
                                    (double)counts.breached);
        }
        voc_txn_abort(&txn);
    }
    struct voc_rules_totals rt;
    voc_writer_rules_totals(d->writer, &rt);
    voc_metrics_write_counter(out, "vocd_rule_calls_total", NULL, "Calls into the Lua profile",
                              (double)rt.calls);
    voc_metrics_write_counter(out, "vocd_rule_errors_total", "reason=\"error\"",
                              "Lua rule calls that failed, by reason", (double)rt.errors);
    voc_metrics_write_counter(out, "vocd_rule_errors_total", "reason=\"instructions\"", NULL,
                              (double)rt.instr_limit);
    voc_metrics_write_counter(out, "vocd_rule_errors_total", "reason=\"memory\"", NULL,
                              (double)rt.memory_limit);
    struct voc_writer_stats *ws = voc_writer_stats(d->writer);
    voc_metrics_write_gauge(out, "vocd_writer_queue_length", NULL,
                            "Writes waiting for the writer thread",
                            (double)atomic_load(&ws->queue_length));
    voc_metrics_write_counter(out, "vocd_writer_batches_total", NULL,
                              "Write transactions committed (group commits)",
                              (double)atomic_load(&ws->batches));
    voc_metrics_write_counter(out, "vocd_writer_jobs_total", NULL, "Writes committed",
                              (double)atomic_load(&ws->jobs));
    voc_metrics_write_counter(out, "vocd_writer_unavailable_total", NULL,
                              "Writes failed because the store could not take them (503)",
                              (double)atomic_load(&ws->unavailable));
    voc_metrics_write_counter(out, "vocd_writer_map_full_retries_total", NULL,
                              "Batches re-run after growing the LMDB map",
                              (double)atomic_load(&ws->retries));
    voc_metrics_write_gauge(out, "vocd_writer_largest_batch", NULL,
                            "Most writes committed in one transaction",
                            (double)atomic_load(&ws->batch_size_max));
    voc_metrics_write_counter(out, "vocd_writer_commit_seconds_total", NULL,
                              "Time spent committing (fsync included)",
                              (double)atomic_load(&ws->commit_us_total) / 1e6);
    voc_metrics_write_gauge(out, "vocd_uptime_seconds", NULL, "Seconds since start",
                            (double)(voc_now_us() - d->started_us) / 1e6);
}

/* ---- shutdown ---- */

static void finish_drain(struct voc_daemon *d)
{
    voc_info("daemon", "drained, stopping");
    event_base_loopexit(d->base, NULL);
}

static void on_drain_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct voc_daemon *d = arg;
    /* Requests may still be arriving on connections accepted before the signal; wait
     * until nothing has come in for a quiet period and nothing is being answered. */
    uint64_t received = voc_http_bytes_received(d->http);
    int64_t now = voc_now_us();
    if (received != d->drain_bytes_seen) {
        d->drain_bytes_seen = received;
        d->drain_last_input_us = now;
    }
    bool quiet = now - d->drain_last_input_us >= DRAIN_QUIET_MS * 1000;
    if (quiet && voc_writer_idle(d->writer) && voc_http_inflight(d->http) == 0 &&
        voc_notify_idle(d->notify)) {
        finish_drain(d);
        return;
    }
    if (voc_now_us() > d->drain_deadline_us) {
        voc_warn("daemon", "drain timed out inflight=%zu", voc_http_inflight(d->http));
        finish_drain(d);
        return;
    }
    struct timeval tv = {0, DRAIN_POLL_MS * 1000};
    event_add(d->drain_timer, &tv);
}

static void begin_drain(struct voc_daemon *d, const char *why)
{
    if (d->draining)
        return;
    d->draining = true;
    d->drain_deadline_us = voc_now_us() + DRAIN_TIMEOUT_S * VOC_US_PER_S;
    d->drain_bytes_seen = voc_http_bytes_received(d->http);
    d->drain_last_input_us = voc_now_us();
    voc_info("daemon", "draining signal=%s inflight=%zu", why, voc_http_inflight(d->http));
    /* No new connections; requests already read get their answers (writes included). */
    voc_http_stop_accepting(d->http);
    voc_plugins_stop(d->plugins);
    voc_notify_drain(d->notify);
    d->drain_timer = evtimer_new(d->base, on_drain_tick, d);
    struct timeval tv = {0, 0};
    event_add(d->drain_timer, &tv);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    struct voc_daemon *d = arg;
    if (sig == SIGHUP) {
        struct voc_diag diag;
        voc_diag_init(&diag);
        voc_daemon_reload_logged(d, "signal=SIGHUP", &diag);
        voc_diag_free(&diag);
        return;
    }
    begin_drain(d, sig == SIGTERM ? "SIGTERM" : "SIGINT");
}

static void on_maintenance(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct voc_daemon *d = arg;
    int cleared = voc_store_reader_check(d->store);
    if (cleared)
        voc_info("store", "cleared stale readers count=%d", cleared);
}

/* ---- SLA timer: one libevent timer for the earliest deadline in the store ---- */

static void sla_rearm(struct voc_daemon *d);

static void on_clocks_fired(void *arg, size_t fired, bool more)
{
    struct voc_daemon *d = arg;
    d->sla_fire_pending = false;
    if (fired)
        voc_debug("sla", "deadlines fired count=%zu", fired);
    if (!fired && !more && voc_writer_next_deadline(d->writer) <= voc_now_us()) {
        /* The job failed (store error, logged): retry after a second, not in a hot loop. */
        struct timeval retry = {1, 0};
        evtimer_add(d->sla_timer, &retry);
        d->sla_armed_us = voc_now_us() + VOC_US_PER_S;
        return;
    }
    if (more) {
        /* A backlog (e.g. after downtime): keep going without waiting for the timer. */
        d->sla_armed_us = INT64_MIN;
    }
    sla_rearm(d);
}

static void on_sla_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct voc_daemon *d = arg;
    d->sla_armed_us = INT64_MAX;
    if (d->sla_fire_pending)
        return;
    if (voc_ops_fire_clocks(d->writer, on_clocks_fired, d) != 0) {
        /* Writer queue full: try again shortly rather than lose the firing. */
        struct timeval retry = {0, 100 * 1000};
        evtimer_add(d->sla_timer, &retry);
        d->sla_armed_us = voc_now_us() + 100 * 1000;
        return;
    }
    d->sla_fire_pending = true;
}

static void sla_rearm(struct voc_daemon *d)
{
    if (d->sla_fire_pending || !d->sla_timer)
        return;
    int64_t next =
        d->sla_armed_us == INT64_MIN ? voc_now_us() : voc_writer_next_deadline(d->writer);
    if (next == INT64_MAX) {
        evtimer_del(d->sla_timer);
        d->sla_armed_us = INT64_MAX;
        return;
    }
    if (next == d->sla_armed_us && evtimer_pending(d->sla_timer, NULL))
        return;
    /* Half a millisecond late on purpose: a timer that fires before the due microsecond
     * would find nothing due and have to be armed again. */
    int64_t delay = next - voc_now_us() + 500;
    if (delay < 0)
        delay = 0;
    struct timeval tv = {(time_t)(delay / VOC_US_PER_S), (suseconds_t)(delay % VOC_US_PER_S)};
    evtimer_add(d->sla_timer, &tv);
    d->sla_armed_us = next;
}

static void on_writer_batch(void *arg)
{
    struct voc_daemon *d = arg;
    sla_rearm(d);
    voc_notify_wake(d->notify);
}

/* ---- reload ---- */

static bool differs(const char *a, const char *b)
{
    return (a == NULL) != (b == NULL) || (a && strcmp(a, b) != 0);
}

int voc_daemon_reload_logged(struct voc_daemon *d, const char *by, struct voc_diag *diag)
{
    voc_info("daemon", "reload requested %s", by);
    int rc = voc_daemon_reload(d, diag);
    voc_diag_log(diag, "config");
    if (rc != 0)
        voc_error("daemon", "reload failed, the old configuration stays errors=%zu", diag->errors);
    return rc;
}

int voc_daemon_reload(struct voc_daemon *d, struct voc_diag *diag)
{
    struct voc_config *next = voc_config_load(d->config_path, diag);
    if (!next)
        return -1;
    struct voc_rules *rules = NULL;
    if (voc_daemon_load_rules(next, &rules, diag) != 0) {
        voc_config_free(next);
        return -1;
    }
    struct voc_policy *policy = NULL;
    if (voc_policy_new(next, rules, &policy, diag) != 0) {
        voc_config_free(next);
        return -1;
    }
    struct voc_plugin_reload *plugin_reload = NULL;
    if (voc_plugins_prepare_reload(d->plugins, next, &plugin_reload, diag) != 0) {
        voc_policy_free(policy);
        voc_config_free(next);
        return -1;
    }
    /* What is bound at start-up stays; say so instead of pretending it changed. */
    if (differs(next->data_dir, d->config->data_dir))
        voc_diag_warn(diag, next->path, 0, "data_dir changes need a restart");
    if (differs(next->listen.http, d->config->listen.http))
        voc_diag_warn(diag, next->path, 0, "listen.http changes need a restart");
    if (next->store.map_size != d->config->store.map_size ||
        next->store.max_map_size != d->config->store.max_map_size)
        voc_diag_warn(diag, next->path, 0, "store settings change at the next restart");

    /* All valid: swap. Everything that reads the config runs on this thread, and nothing
     * keeps pointers into it across a callback, so the old one can go now. */
    struct voc_config *old = d->config;
    d->config = next;
    voc_plugins_commit_reload(d->plugins, plugin_reload);
    voc_notify_reload(d->notify, next);
    voc_config_free(old);
    voc_log_set_level((enum voc_log_level)next->log_level);
    voc_http_set_max_body(d->http, next->http.max_body_size);
    set_profile_name(d, rules);
    voc_writer_set_policy(d->writer, policy);
    voc_info("daemon", "reloaded config=%s profile=%s", next->path,
             d->profile_name ? d->profile_name : "(none)");
    return 0;
}

/* ---- start / run / stop ---- */

int voc_daemon_check(const char *config_path, struct voc_diag *diag)
{
    struct voc_config *cfg = voc_config_load(config_path, diag);
    if (!cfg)
        return -1;
    struct voc_rules *rules = NULL;
    int rc = voc_daemon_load_rules(cfg, &rules, diag);
    struct voc_policy *policy = NULL;
    if (voc_policy_new(cfg, rc == 0 ? rules : NULL, &policy, diag) != 0)
        rc = -1;
    else if (rc != 0)
        voc_rules_free(rules);
    voc_policy_free(policy);
    if (voc_plugins_check(cfg, diag) != 0)
        rc = -1;
    voc_config_free(cfg);
    return rc == 0 && diag->errors == 0 ? 0 : -1;
}

int voc_daemon_start(struct voc_daemon *d, const char *config_path, struct voc_diag *diag)
{
    memset(d, 0, sizeof *d);
    d->started_us = voc_now_us();
    d->config_path = strdup(config_path);
    d->config = voc_config_load(config_path, diag);
    if (!d->config)
        return -1;
    voc_log_set_level((enum voc_log_level)d->config->log_level);

    struct voc_rules *rules = NULL;
    if (voc_daemon_load_rules(d->config, &rules, diag) != 0)
        return -1;
    set_profile_name(d, rules);
    if (!rules)
        voc_warn("rules", "no profile configured: cases get the default classification");

    char *err = NULL;
    if (voc_textnorm_new(&d->textnorm, &err) != 0) {
        voc_diag_error(diag, NULL, 0, "text normalisation: %s", err ? err : "?");
        free(err);
        voc_rules_free(rules);
        return -1;
    }

    /* The backup thread wakes the loop with event_active, which needs libevent's locks. */
    evthread_use_pthreads();
    d->base = event_base_new();
    if (!d->base) {
        voc_diag_error(diag, NULL, 0, "cannot create the event loop");
        voc_rules_free(rules);
        return -1;
    }

    char errbuf[512];
    struct voc_store_options so = {.path = d->config->data_dir,
                                   .map_size = d->config->store.map_size,
                                   .max_map_size = d->config->store.max_map_size,
                                   .max_readers = (unsigned)d->config->store.max_readers};
    if (voc_store_open(&d->store, &so, errbuf, sizeof errbuf) != 0) {
        voc_diag_error(diag, d->config->path, 0, "%s", errbuf);
        voc_rules_free(rules);
        return -1;
    }
    voc_ops_metrics_init();
    struct voc_policy *policy = NULL;
    if (voc_policy_new(d->config, rules, &policy, diag) != 0)
        return -1;
    voc_sla_metrics_init();
    struct voc_writer_options wo = {.queue_limit = (size_t)d->config->writer.queue_limit,
                                    .batch_max = (size_t)d->config->writer.batch_max};
    if (voc_writer_start(&d->writer, d->store, d->base, &wo, policy) != 0) {
        voc_diag_error(diag, NULL, 0, "cannot start the writer thread");
        voc_policy_free(policy);
        return -1;
    }
    d->sla_timer = evtimer_new(d->base, on_sla_timer, d);
    d->sla_armed_us = INT64_MAX;
    voc_writer_on_batch(d->writer, on_writer_batch, d);
    /* Deadlines that fell due while vocd was down fire now, once. */
    sla_rearm(d);
    if (voc_notify_start(&d->notify, d->base, d->store, d->writer, d->config) != 0) {
        voc_diag_error(diag, NULL, 0, "cannot start notification delivery");
        return -1;
    }

    char *host = NULL;
    uint16_t port = 0;
    voc_parse_listen(d->config->listen.http, &host, &port);
    struct voc_http_options ho = {.host = host,
                                  .port = port,
                                  .max_body_size = d->config->http.max_body_size,
                                  .timeout_s = d->config->http.request_timeout_s};
    int rc = voc_http_start(&d->http, d->base, &ho, errbuf, sizeof errbuf);
    if (rc != 0) {
        voc_diag_error(diag, d->config->path, 0, "%s", errbuf);
        free(host);
        return -1;
    }
    voc_api_register(d);
    voc_metrics_add_collector(collect_core_metrics, d);
    if (voc_plugins_start(d, &d->plugins, diag) != 0) {
        free(host);
        return -1;
    }

    d->sig_term = evsignal_new(d->base, SIGTERM, on_signal, d);
    d->sig_int = evsignal_new(d->base, SIGINT, on_signal, d);
    d->sig_hup = evsignal_new(d->base, SIGHUP, on_signal, d);
    event_add(d->sig_term, NULL);
    event_add(d->sig_int, NULL);
    event_add(d->sig_hup, NULL);
    /* A client that hangs up while we write must not kill the daemon. */
    signal(SIGPIPE, SIG_IGN);
    d->maintenance_timer = event_new(d->base, -1, EV_PERSIST, on_maintenance, d);
    event_add(d->maintenance_timer, &(struct timeval){MAINTENANCE_INTERVAL_S, 0});

    voc_info("daemon", "started version=%s config=%s data_dir=%s profile=%s", VOC_VERSION,
             d->config->path, d->config->data_dir, d->profile_name ? d->profile_name : "(none)");
    voc_info("http", "listening addr=%s:%u", host, voc_http_port(d->http));
    free(host);
    return 0;
}

int voc_daemon_run(struct voc_daemon *d)
{
    event_base_dispatch(d->base);
    return 0;
}

void voc_daemon_free(struct voc_daemon *d)
{
    /* Transfers still running are aborted (they stay pending); outcomes already known
     * reach the writer before it stops. */
    voc_notify_stop(d->notify);
    if (d->writer) {
        /* Every queued write still commits and answers its callback before we go. */
        voc_writer_stop(d->writer);
        d->writer = NULL;
    }
    voc_notify_free(d->notify);
    d->notify = NULL;
    /* After the writer: its last callbacks may still go to plugins. */
    voc_plugins_free(d->plugins);
    d->plugins = NULL;
    if (d->store)
        voc_metrics_remove_collector(collect_core_metrics, d);
    /* Before the listener goes (the backup's request is a request of it) and before the
     * store closes (the copy reads it). */
    voc_api_shutdown(d);
    voc_http_free(d->http);
    struct event **events[] = {&d->sig_term,    &d->sig_int,           &d->sig_hup,
                               &d->drain_timer, &d->maintenance_timer, &d->sla_timer};
    for (size_t i = 0; i < sizeof events / sizeof events[0]; i++) {
        if (*events[i])
            event_free(*events[i]);
        *events[i] = NULL;
    }
    voc_store_close(d->store);
    if (d->base)
        event_base_free(d->base);
    voc_textnorm_free(d->textnorm);
    voc_config_free(d->config);
    free(d->config_path);
    free(d->profile_name);
    memset(d, 0, sizeof *d);
}
