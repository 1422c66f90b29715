#include "notify.h"

#include <curl/curl.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "case_view.h"
#include "casedb.h"
#include "config.h"
#include "curl_loop.h"
#include "jsonutil.h"
#include "keys.h"
#include "log.h"
#include "metrics.h"
#include "notify_format.h"
#include "store.h"
#include "timeutil.h"
#include "version.h"
#include "writer.h"

/* Deliveries under way at once (transfers plus outcomes waiting for the writer): enough to
 * keep a slow receiver from holding up the others, small enough that a backlog after an
 * outage does not open hundreds of connections. */
#define MAX_IN_FLIGHT 32
/* After the store refused an outcome, wait this long before reading the outbox again. */
#define HOLD_AFTER_STORE_ERROR_US (1 * VOC_US_PER_S)
/* Writer queue full: offer the outcomes again after this long. */
#define RESUBMIT_DELAY_US (100 * 1000)
/* Fallback re-check while the newest commit waits for its sync (see pump). */
#define DURABLE_WAIT_US (10 * 1000)
/* Bytes of a refusing receiver's reply kept in last_error. */
#define RESPONSE_KEEP 200
/* OUTBOX_DUE keys: next attempt (u64, biased so that signed time sorts as unsigned) + id. */
#define DUE_BIAS ((uint64_t)1 << 63)
#define DUE_KEY_LEN 16
/* The channel the e-mail plugin files Message-IDs under, so replies thread into the case. */
#define EMAIL_CHANNEL "email"

struct notifier {
    char *name;
    int type; /* enum voc_notifier_type */
    char *url, *secret, *smtp, *from;
    char **to;
    size_t to_count;
    double timeout_s, expire_s;
};

enum result { RESULT_SENT, RESULT_RETRY, RESULT_FAILED, RESULT_DROP };
static const char *const result_names[] = {"sent", "retry", "failed", "dropped"};

/* The outcome of one attempt, recorded by the writer thread. */
struct outcome_job {
    struct voc_job base;
    struct voc_notify *n;
    uint64_t id;
    unsigned char due_key[DUE_KEY_LEN]; /* the key the entry was picked under */
    enum result asked;                  /* what the attempt says */
    bool attempted;                     /* something was sent (counts in attempts) */
    char *notifier;
    char *error;
    long status; /* HTTP status or SMTP reply code, 0 = none */
    int64_t backoff_us;
    int64_t expire_at_us; /* INT64_MAX = never */
    uint64_t case_id;
    char *thread_ref; /* e-mail Message-ID to file under the case */
    /* set by run() */
    enum result result;
    unsigned attempts;
    int64_t next_us;
    struct outcome_job *next_unsent;
};

/* One delivery attempt under way (webhook or e-mail). */
struct attempt {
    struct voc_notify *n;
    uint64_t id;
    unsigned char due_key[DUE_KEY_LEN];
    uint64_t case_id;
    unsigned number;
    int type;
    char *notifier;
    int64_t expire_at_us;
    char *body;
    size_t body_len, body_off;
    struct curl_slist *headers, *rcpt;
    char *thread_ref;
    CURL *easy;
    char errbuf[CURL_ERROR_SIZE];
    char response[RESPONSE_KEEP + 1];
    size_t response_len;
};

struct voc_notify {
    struct event_base *base;
    struct voc_store *store;
    struct voc_writer *writer;
    struct voc_curl_loop *curl;
    struct notifier *notifiers;
    size_t notifier_count;
    struct event *pump_event; /* "look at the outbox", coalesced per loop turn */
    struct event *timer;      /* the earliest next attempt */
    int64_t timer_at_us;
    uint64_t in_flight[MAX_IN_FLIGHT]; /* picked, outcome not yet committed */
    size_t in_flight_count;
    struct outcome_job *unsent_head, *unsent_tail; /* the writer queue was full */
    int64_t hold_until_us;
    bool draining, stopping;
    uint64_t rng;
};

/* ---- small helpers ---- */

static double next_random(struct voc_notify *n)
{
    /* xorshift64*: jitter only, not secrets. */
    n->rng ^= n->rng >> 12;
    n->rng ^= n->rng << 25;
    n->rng ^= n->rng >> 27;
    return (double)((n->rng * UINT64_C(2685821657736338717)) >> 11) / 9007199254740992.0;
}

/* Text from outside (a receiver's reply, a curl message) as printable ASCII: it goes into
 * JSON and log lines, where invalid UTF-8 or a quote would break them. */
static void clean_text(char *dst, size_t cap, const char *src, size_t len)
{
    size_t j = 0;
    for (size_t i = 0; i < len && j + 1 < cap; i++) {
        unsigned char c = (unsigned char)src[i];
        dst[j++] = c == '"' ? '\'' : (c < 0x20 || c > 0x7e) ? ' ' : (char)c;
    }
    while (j > 0 && dst[j - 1] == ' ')
        j--;
    dst[j] = '\0';
}

/* The same for UTF-8 text we produced (a profile's message): keep it, drop what breaks a
 * log line. malloc'd. */
static char *log_safe(const char *s)
{
    char *out = strdup(s ? s : "");
    for (char *p = out; p && *p; p++)
        if ((unsigned char)*p < 0x20 || *p == '"')
            *p = *p == '"' ? '\'' : ' ';
    return out;
}

static void label_value(char *dst, size_t cap, const char *s)
{
    size_t j = 0;
    for (; *s && j + 2 < cap; s++) {
        if (*s == '\\' || *s == '"') {
            dst[j++] = '\\';
            dst[j++] = *s;
        } else if (*s == '\n') {
            dst[j++] = '\\';
            dst[j++] = 'n';
        } else {
            dst[j++] = *s;
        }
    }
    dst[j] = '\0';
}

static struct voc_metric *outcome_metric(const char *notifier, enum result r)
{
    char name[256], labels[400];
    label_value(name, sizeof name, notifier ? notifier : "");
    snprintf(labels, sizeof labels, "notifier=\"%s\",outcome=\"%s\"", name, result_names[r]);
    return voc_metric_register("vocd_notifications_total", labels, VOC_METRIC_COUNTER,
                               "Notification delivery outcomes: sent, retry (an attempt failed "
                               "and another follows), failed (given up)");
}

static bool in_flight_has(const struct voc_notify *n, uint64_t id)
{
    for (size_t i = 0; i < n->in_flight_count; i++)
        if (n->in_flight[i] == id)
            return true;
    return false;
}

static void in_flight_remove(struct voc_notify *n, uint64_t id)
{
    for (size_t i = 0; i < n->in_flight_count; i++) {
        if (n->in_flight[i] == id) {
            n->in_flight[i] = n->in_flight[--n->in_flight_count];
            return;
        }
    }
}

static const struct notifier *find_notifier(const struct voc_notify *n, const char *name)
{
    for (size_t i = 0; name && i < n->notifier_count; i++)
        if (strcmp(n->notifiers[i].name, name) == 0)
            return &n->notifiers[i];
    return NULL;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void notifiers_free(struct notifier *list, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        struct notifier *x = &list[i];
        free(x->name);
        free(x->url);
        free(x->secret);
        free(x->smtp);
        free(x->from);
        for (size_t k = 0; k < x->to_count; k++)
            free(x->to[k]);
        free(x->to);
    }
    free(list);
}

/* A private copy: the config is freed at the next reload, attempts may outlive it. */
static struct notifier *notifiers_copy(const struct voc_config *cfg)
{
    struct notifier *list = calloc(cfg->notifier_count ? cfg->notifier_count : 1, sizeof *list);
    if (!list)
        return NULL;
    for (size_t i = 0; i < cfg->notifier_count; i++) {
        const struct voc_notifier_config *c = &cfg->notifiers[i];
        struct notifier *x = &list[i];
        x->name = strdup(c->name);
        x->type = c->type;
        x->url = dup_or_null(c->url);
        x->secret = dup_or_null(c->secret);
        x->smtp = dup_or_null(c->smtp);
        x->from = dup_or_null(c->from);
        x->to = calloc(c->to_count ? c->to_count : 1, sizeof *x->to);
        for (size_t k = 0; x->to && k < c->to_count; k++)
            x->to[k] = strdup(c->to[k]);
        x->to_count = x->to ? c->to_count : 0;
        x->timeout_s = c->timeout_s;
        x->expire_s = c->expire_s;
    }
    return list;
}

/* ---- timers ---- */

static void arm_timer(struct voc_notify *n, int64_t at_us)
{
    if (n->stopping)
        return;
    if (evtimer_pending(n->timer, NULL) && n->timer_at_us <= at_us)
        return; /* it fires sooner already, and the scan then re-arms */
    /* Half a millisecond late on purpose: an early timer would find nothing due. */
    int64_t delay = at_us - voc_now_us() + 500;
    if (delay < 0)
        delay = 0;
    struct timeval tv = {(time_t)(delay / VOC_US_PER_S), (suseconds_t)(delay % VOC_US_PER_S)};
    evtimer_add(n->timer, &tv);
    n->timer_at_us = at_us;
}

void voc_notify_wake(struct voc_notify *n)
{
    if (n && !n->stopping)
        event_active(n->pump_event, EV_TIMEOUT, 0);
}

/* ---- recording outcomes (writer thread) ---- */

static void set_time(json_t *entry, const char *key, int64_t us)
{
    char when[40];
    voc_format_time(us, when, sizeof when);
    json_object_set_new(entry, key, json_string(when));
}

int voc_notify_outbox_put(struct voc_txn *txn, int64_t now_us, uint64_t case_id, uint32_t event_seq,
                          json_t *entry, uint64_t *id_out)
{
    MDB_val k, v;
    uint64_t next = 1;
    int rc = voc_txn_last(txn, VOC_DB_OUTBOX, &k, &v);
    if (rc == 0 && k.mv_size == 8)
        next = voc_key_get_u64(k.mv_data) + 1;
    else if (rc != MDB_NOTFOUND)
        return rc;
    json_object_set_new(entry, "id", json_integer((json_int_t)next));
    json_object_set_new(entry, "case_id", json_integer((json_int_t)case_id));
    json_object_set_new(entry, "event_seq", json_integer(event_seq));
    set_time(entry, "created_at", now_us);
    json_object_set_new(entry, "status", json_string("pending"));
    json_object_set_new(entry, "attempts", json_integer(0));
    set_time(entry, "next_attempt_at", now_us);
    size_t len;
    char *text = voc_json_dump(entry, &len);
    if (!text)
        return ENOMEM;
    unsigned char key[8];
    voc_key_set_u64(key, next);
    rc = voc_txn_put(txn, VOC_DB_OUTBOX, key, sizeof key, text, len);
    free(text);
    struct voc_key due;
    voc_key_init(&due);
    voc_key_u64(&due, (uint64_t)now_us + DUE_BIAS);
    voc_key_u64(&due, next);
    if (rc == 0)
        rc = voc_txn_put(txn, VOC_DB_OUTBOX_DUE, due.buf, due.len, "", 0);
    if (rc == 0 && id_out)
        *id_out = next;
    return rc;
}

static int outcome_run(struct voc_job *base, struct voc_write_ctx *ctx)
{
    struct outcome_job *j = (struct outcome_job *)base;
    struct voc_txn *txn = ctx->txn;
    /* Depends only on the job and the store: the writer may run it again after growing the
     * map. */
    j->result = j->asked;
    j->next_us = 0;
    unsigned char id_key[8];
    voc_key_set_u64(id_key, j->id);
    MDB_val v;
    int rc = voc_txn_get(txn, VOC_DB_OUTBOX, id_key, sizeof id_key, &v);
    if (rc == MDB_NOTFOUND) {
        j->result = RESULT_DROP;
        return voc_txn_del(txn, VOC_DB_OUTBOX_DUE, j->due_key, DUE_KEY_LEN) ? -1 : 0;
    }
    if (rc)
        return -1;
    json_t *entry = json_loadb(v.mv_data, v.mv_size, 0, NULL);
    const char *status = voc_json_str(entry, "status");
    if (!entry || !status || strcmp(status, "pending") != 0) {
        /* Already settled (or unreadable): only the stray due key goes. */
        json_decref(entry);
        j->result = RESULT_DROP;
        return voc_txn_del(txn, VOC_DB_OUTBOX_DUE, j->due_key, DUE_KEY_LEN) ? -1 : 0;
    }
    long long attempts = voc_json_int(entry, "attempts", 0) + (j->attempted ? 1 : 0);
    j->attempts = (unsigned)attempts;
    json_object_set_new(entry, "attempts", json_integer(attempts));
    if (j->attempted)
        set_time(entry, "last_attempt_at", ctx->now_us);
    if (j->status)
        json_object_set_new(entry, "last_status", json_integer(j->status));
    if (j->result == RESULT_RETRY) {
        int64_t next = ctx->now_us + j->backoff_us;
        if (next > j->expire_at_us) {
            /* The next try would come after the expiry: give up now rather than later. */
            j->result = RESULT_FAILED;
        } else {
            struct voc_key due;
            voc_key_init(&due);
            voc_key_u64(&due, (uint64_t)next + DUE_BIAS);
            voc_key_u64(&due, j->id);
            voc_txn_del(txn, VOC_DB_OUTBOX_DUE, j->due_key, DUE_KEY_LEN);
            voc_txn_put(txn, VOC_DB_OUTBOX_DUE, due.buf, due.len, "", 0);
            set_time(entry, "next_attempt_at", next);
            j->next_us = next;
        }
    }
    if (j->error)
        json_object_set_new(entry, "last_error", json_string(j->error));
    if (j->result == RESULT_SENT || j->result == RESULT_FAILED) {
        json_object_set_new(entry, "status",
                            json_string(j->result == RESULT_SENT ? "sent" : "failed"));
        set_time(entry, j->result == RESULT_SENT ? "sent_at" : "failed_at", ctx->now_us);
        json_object_set_new(entry, "next_attempt_at", json_null());
        voc_txn_del(txn, VOC_DB_OUTBOX_DUE, j->due_key, DUE_KEY_LEN);
        if (j->result == RESULT_SENT && j->thread_ref && j->case_id)
            voc_casedb_ref_put(txn, EMAIL_CHANNEL, j->thread_ref, j->case_id);
    }
    size_t len;
    char *text = voc_json_dump(entry, &len);
    json_decref(entry);
    if (!text) {
        voc_err_set(&base->err, 500, "internal", "out of memory");
        return -1;
    }
    voc_txn_put(txn, VOC_DB_OUTBOX, id_key, sizeof id_key, text, len);
    free(text);
    return txn->error ? -1 : 0;
}

static void outcome_free(struct outcome_job *j)
{
    free(j->notifier);
    free(j->error);
    free(j->thread_ref);
    free(j);
}

static void outcome_done(struct voc_job *base)
{
    struct outcome_job *j = (struct outcome_job *)base;
    struct voc_notify *n = j->n;
    in_flight_remove(n, j->id);
    if (base->outcome == VOC_JOB_COMMITTED) {
        if (j->result != RESULT_DROP)
            voc_metric_add(outcome_metric(j->notifier, j->result), 1);
        const char *error = j->error ? j->error : "";
        switch (j->result) {
        case RESULT_SENT:
            voc_info("notify", "delivered id=%llu notifier=%s case=%llu attempt=%u status=%ld",
                     (unsigned long long)j->id, j->notifier, (unsigned long long)j->case_id,
                     j->attempts, j->status);
            break;
        case RESULT_RETRY:
            voc_warn("notify",
                     "attempt failed, will retry id=%llu notifier=%s attempt=%u retry_in=%.1fs "
                     "error=\"%s\"",
                     (unsigned long long)j->id, j->notifier, j->attempts,
                     (double)j->backoff_us / 1e6, error);
            break;
        case RESULT_FAILED:
            voc_error("notify",
                      "notification failed, giving up id=%llu notifier=%s case=%llu "
                      "attempts=%u error=\"%s\"",
                      (unsigned long long)j->id, j->notifier, (unsigned long long)j->case_id,
                      j->attempts, error);
            break;
        case RESULT_DROP:
            voc_warn("notify", "outbox entry missing or already settled, due key removed id=%llu",
                     (unsigned long long)j->id);
            break;
        }
    } else {
        /* The entry keeps its due key and is picked again: a delivered one is sent again,
         * under the same Idempotency-Key. */
        voc_warn("notify", "cannot record a delivery outcome id=%llu outcome=%s error=\"%s\"",
                 (unsigned long long)j->id, result_names[j->asked], base->err.message);
        n->hold_until_us = voc_now_us() + HOLD_AFTER_STORE_ERROR_US;
    }
    outcome_free(j);
    voc_notify_wake(n);
}

static struct outcome_job *outcome_new(struct voc_notify *n, uint64_t id,
                                       const unsigned char due_key[DUE_KEY_LEN], enum result r,
                                       const char *notifier, uint64_t case_id)
{
    struct outcome_job *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->base.run = outcome_run;
    j->base.done = outcome_done;
    j->n = n;
    j->id = id;
    memcpy(j->due_key, due_key, DUE_KEY_LEN);
    j->asked = r;
    j->notifier = strdup(notifier ? notifier : "");
    j->case_id = case_id;
    j->expire_at_us = INT64_MAX;
    return j;
}

/* Hand an outcome to the writer; when its queue is full, keep it and offer it again. */
static void outcome_submit(struct voc_notify *n, struct outcome_job *j)
{
    if (!n->unsent_head && voc_writer_submit(n->writer, &j->base) == 0)
        return;
    j->next_unsent = NULL;
    if (n->unsent_tail)
        n->unsent_tail->next_unsent = j;
    else
        n->unsent_head = j;
    n->unsent_tail = j;
    arm_timer(n, voc_now_us() + RESUBMIT_DELAY_US);
}

static void flush_unsent(struct voc_notify *n)
{
    while (n->unsent_head) {
        struct outcome_job *j = n->unsent_head;
        if (voc_writer_submit(n->writer, &j->base) != 0)
            return;
        n->unsent_head = j->next_unsent;
        if (!n->unsent_head)
            n->unsent_tail = NULL;
    }
}

/* ---- attempts ---- */

static void attempt_free(struct attempt *a)
{
    if (a->easy)
        curl_easy_cleanup(a->easy);
    curl_slist_free_all(a->headers);
    curl_slist_free_all(a->rcpt);
    free(a->body);
    free(a->notifier);
    free(a->thread_ref);
    free(a);
}

static size_t keep_response(char *data, size_t size, size_t nmemb, void *arg)
{
    struct attempt *a = arg;
    size_t n = size * nmemb;
    size_t room = RESPONSE_KEEP - a->response_len;
    size_t take = n < room ? n : room;
    memcpy(a->response + a->response_len, data, take);
    a->response_len += take;
    a->response[a->response_len] = '\0';
    return n;
}

static size_t read_message(char *buf, size_t size, size_t nmemb, void *arg)
{
    struct attempt *a = arg;
    size_t room = size * nmemb;
    size_t left = a->body_len - a->body_off;
    size_t take = left < room ? left : room;
    memcpy(buf, a->body + a->body_off, take);
    a->body_off += take;
    return take;
}

static void on_transfer_done(CURL *easy, CURLcode rc, void *arg)
{
    (void)easy;
    struct attempt *a = arg;
    struct voc_notify *n = a->n;
    if (n->stopping) {
        /* Aborted at shutdown: the entry stays pending and goes out after the restart. */
        in_flight_remove(n, a->id);
        attempt_free(a);
        return;
    }
    long code = 0;
    curl_easy_getinfo(a->easy, CURLINFO_RESPONSE_CODE, &code);
    enum result r;
    char error[400] = "";
    if (a->type == VOC_NOTIFIER_WEBHOOK) {
        if (rc == CURLE_OK && code >= 200 && code <= 299) {
            r = RESULT_SENT;
        } else if (rc == CURLE_OK) {
            char reply[RESPONSE_KEEP + 1];
            clean_text(reply, sizeof reply, a->response, a->response_len);
            snprintf(error, sizeof error, "HTTP %ld%s%s", code, reply[0] ? ": " : "", reply);
            r = RESULT_RETRY;
        } else {
            const char *raw = a->errbuf[0] ? a->errbuf : curl_easy_strerror(rc);
            clean_text(error, sizeof error, raw, strlen(raw));
            r = RESULT_RETRY;
        }
    } else {
        /* SMTP: curl reports any refusal (MAIL, RCPT, DATA) as an error. */
        if (rc == CURLE_OK) {
            r = RESULT_SENT;
        } else {
            char why[CURL_ERROR_SIZE];
            const char *raw = a->errbuf[0] ? a->errbuf : curl_easy_strerror(rc);
            clean_text(why, sizeof why, raw, strlen(raw));
            if (code)
                snprintf(error, sizeof error, "SMTP %ld: %s", code, why);
            else
                snprintf(error, sizeof error, "%s", why);
            r = RESULT_RETRY;
        }
    }
    struct outcome_job *j = outcome_new(n, a->id, a->due_key, r, a->notifier, a->case_id);
    if (!j) {
        in_flight_remove(n, a->id);
        attempt_free(a);
        return;
    }
    j->attempted = true;
    j->status = code;
    j->expire_at_us = a->expire_at_us;
    j->backoff_us = voc_notify_backoff_us(a->number, next_random(n));
    j->error = error[0] ? strdup(error) : NULL;
    if (r == RESULT_SENT) {
        j->thread_ref = a->thread_ref;
        a->thread_ref = NULL;
    }
    attempt_free(a);
    outcome_submit(n, j);
}

static void common_options(struct attempt *a, const struct notifier *x)
{
    long timeout_ms = x->timeout_s > 0 ? (long)(x->timeout_s * 1000) : 10000;
    if (timeout_ms < 1)
        timeout_ms = 1;
    curl_easy_setopt(a->easy, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(a->easy, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
    /* The loop thread must never get a signal from curl's resolver timeouts. */
    curl_easy_setopt(a->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(a->easy, CURLOPT_ERRORBUFFER, a->errbuf);
    curl_easy_setopt(a->easy, CURLOPT_USERAGENT, "vocd/" VOC_VERSION);
}

static int webhook_setup(struct attempt *a, const struct notifier *x, const json_t *payload,
                         int64_t now_us)
{
    a->body = voc_json_dump(payload, &a->body_len);
    if (!a->body)
        return -1;
    char ts[24], sig[VOC_NOTIFY_SIG_LEN], line[160];
    snprintf(ts, sizeof ts, "%lld", (long long)(now_us / VOC_US_PER_S));
    a->headers = curl_slist_append(a->headers, "Content-Type: application/json");
    snprintf(line, sizeof line, "X-Voc-Timestamp: %s", ts);
    a->headers = curl_slist_append(a->headers, line);
    if (x->secret) {
        if (voc_notify_sign(x->secret, strlen(x->secret), ts, a->body, a->body_len, sig) != 0)
            return -1;
        snprintf(line, sizeof line, "X-Voc-Signature: %s", sig);
        a->headers = curl_slist_append(a->headers, line);
    }
    snprintf(line, sizeof line, "Idempotency-Key: vocd-notification-%llu",
             (unsigned long long)a->id);
    a->headers = curl_slist_append(a->headers, line);
    snprintf(line, sizeof line, "X-Voc-Attempt: %u", a->number);
    a->headers = curl_slist_append(a->headers, line);
    /* No "Expect: 100-continue" round trip: the body is small and always sent. */
    a->headers = curl_slist_append(a->headers, "Expect:");
    if (!a->headers)
        return -1;
    common_options(a, x);
    curl_easy_setopt(a->easy, CURLOPT_URL, x->url);
    curl_easy_setopt(a->easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(a->easy, CURLOPT_POST, 1L);
    curl_easy_setopt(a->easy, CURLOPT_POSTFIELDS, a->body);
    curl_easy_setopt(a->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)a->body_len);
    curl_easy_setopt(a->easy, CURLOPT_HTTPHEADER, a->headers);
    curl_easy_setopt(a->easy, CURLOPT_WRITEFUNCTION, keep_response);
    curl_easy_setopt(a->easy, CURLOPT_WRITEDATA, a);
    return 0;
}

/* "<vocd-notification-ID.CREATED@domain>": the same for every attempt, so a mail sent again
 * after a crash carries the Message-ID of the first and mail clients show it once. */
static char *message_id(const struct notifier *x, uint64_t id, int64_t created_us)
{
    char *addr = voc_mail_angle_addr(x->from);
    const char *at = addr ? strchr(addr, '@') : NULL;
    char domain[256] = "vocd.invalid";
    if (at && at[1] && at[1] != '>') {
        size_t len = strlen(at + 1) - 1; /* without '>' */
        if (len < sizeof domain) {
            memcpy(domain, at + 1, len);
            domain[len] = '\0';
        }
    }
    free(addr);
    char buf[400];
    snprintf(buf, sizeof buf, "vocd-notification-%llu.%lld@%s", (unsigned long long)id,
             (long long)created_us, domain);
    return strdup(buf);
}

static int email_setup(struct attempt *a, const struct notifier *x, const json_t *entry,
                       const json_t *payload, int64_t created_us, int64_t now_us, char *error,
                       size_t errlen)
{
    char *mail_from = voc_mail_angle_addr(x->from);
    if (!mail_from) {
        snprintf(error, errlen, "from is not an e-mail address");
        return -1;
    }
    /* A notification queued by a plugin (an acknowledgement to a customer) names its own
     * recipients; the profile's go to the notifier's list. */
    const char *entry_list[VOC_NOTIFY_MAX_ENTRY_RECIPIENTS];
    const char *const *to_list = (const char *const *)x->to;
    size_t to_count = x->to_count;
    json_t *entry_to = json_object_get(entry, "to");
    if (json_is_array(entry_to)) {
        size_t i;
        json_t *addr;
        to_count = 0;
        json_array_foreach (entry_to, i, addr)
            if (json_is_string(addr) && to_count < VOC_NOTIFY_MAX_ENTRY_RECIPIENTS)
                entry_list[to_count++] = json_string_value(addr);
        to_list = entry_list;
    }
    for (size_t i = 0; i < to_count; i++) {
        char *rcpt = voc_mail_angle_addr(to_list[i]);
        if (rcpt)
            a->rcpt = curl_slist_append(a->rcpt, rcpt);
        free(rcpt);
    }
    if (!a->rcpt) {
        free(mail_from);
        snprintf(error, errlen, "no usable recipient address in to");
        return -1;
    }
    char *subject = voc_notify_subject(a->case_id, voc_json_str(entry, "message"));
    const char *own_text = voc_json_str(entry, "text");
    char *summary = own_text ? NULL : voc_notify_email_text(payload);
    const char *text = own_text ? own_text : summary;
    a->thread_ref = message_id(x, a->id, created_us);
    /* The outbox is data: the builder checks the id again. */
    struct voc_notify_mail m = {.from = x->from,
                                .to = to_list,
                                .to_count = to_count,
                                .subject = subject,
                                .text = text,
                                .message_id = a->thread_ref,
                                .in_reply_to = voc_json_str(entry, "in_reply_to"),
                                .date_us = now_us,
                                .case_id = a->case_id,
                                .notification_id = a->id};
    a->body = subject && text && a->thread_ref ? voc_notify_mail_build(&m, &a->body_len) : NULL;
    free(subject);
    free(summary);
    if (!a->body) {
        /* Out of memory: no error text, so the entry stays due and is tried again. */
        free(mail_from);
        return -1;
    }
    common_options(a, x);
    curl_easy_setopt(a->easy, CURLOPT_URL, x->smtp);
    curl_easy_setopt(a->easy, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    curl_easy_setopt(a->easy, CURLOPT_MAIL_FROM, mail_from); /* curl copies it */
    curl_easy_setopt(a->easy, CURLOPT_MAIL_RCPT, a->rcpt);
    curl_easy_setopt(a->easy, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(a->easy, CURLOPT_READFUNCTION, read_message);
    curl_easy_setopt(a->easy, CURLOPT_READDATA, a);
    curl_easy_setopt(a->easy, CURLOPT_INFILESIZE_LARGE, (curl_off_t)a->body_len);
    free(mail_from);
    return 0;
}

/* ---- picking due entries (event loop, one read transaction) ---- */

struct pick {
    uint64_t id;
    unsigned char key[DUE_KEY_LEN];
};

struct scan_state {
    struct voc_notify *n;
    int64_t now_us;
    struct pick *picks;
    size_t count, max;
    int64_t next_due_us; /* first entry not yet due; INT64_MAX = none */
    bool more;           /* stopped because every slot is taken */
};

static int scan_due(const MDB_val *key, const MDB_val *val, void *arg)
{
    (void)val;
    struct scan_state *st = arg;
    if (key->mv_size != DUE_KEY_LEN)
        return 0;
    int64_t due = (int64_t)(voc_key_get_u64(key->mv_data) - DUE_BIAS);
    uint64_t id = voc_key_get_u64((const unsigned char *)key->mv_data + 8);
    if (due > st->now_us) {
        st->next_due_us = due;
        return 1; /* keys are in time order: nothing after this is due either */
    }
    if (in_flight_has(st->n, id))
        return 0;
    for (size_t i = 0; i < st->count; i++)
        if (st->picks[i].id == id)
            return 0;
    if (st->count == st->max) {
        st->more = true;
        return 1;
    }
    st->picks[st->count].id = id;
    memcpy(st->picks[st->count].key, key->mv_data, DUE_KEY_LEN);
    st->count++;
    return 0;
}

/* What to do with one picked entry, decided inside the read transaction and carried out
 * after it ended. */
struct plan {
    struct attempt *attempt;     /* start this transfer, or */
    struct outcome_job *outcome; /* record this at once */
};

static int get_event(struct voc_txn *txn, uint64_t case_id, uint32_t seq, json_t **event)
{
    struct voc_key k;
    voc_key_init(&k);
    voc_key_u64(&k, case_id);
    voc_key_u32(&k, seq);
    MDB_val v;
    *event = NULL;
    int rc = voc_txn_get(txn, VOC_DB_EVENTS, k.buf, k.len, &v);
    if (rc == 0)
        *event = json_loadb(v.mv_data, v.mv_size, 0, NULL);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

static struct outcome_job *immediate(struct voc_notify *n, const struct pick *p, enum result r,
                                     const char *notifier, uint64_t case_id, const char *error)
{
    struct outcome_job *j = outcome_new(n, p->id, p->key, r, notifier, case_id);
    if (j && error)
        j->error = strdup(error);
    return j;
}

/* The log notifier: the delivery is this line. */
static void log_delivery(const struct notifier *x, const json_t *entry, const json_t *event,
                         uint64_t case_id, uint64_t id)
{
    char component[200];
    snprintf(component, sizeof component, "notify/%s", x->name);
    char *message = log_safe(voc_json_str(entry, "message"));
    const char *type = voc_json_str(event, "type");
    voc_log(VOC_LOG_INFO, component, "case=%llu notification=%llu event=%s message=\"%s\"",
            (unsigned long long)case_id, (unsigned long long)id, type ? type : "-",
            message ? message : "");
    free(message);
}

/* Returns 0 with *plan filled (or empty when memory ran out), or a store error. */
static int prepare(struct voc_notify *n, struct voc_txn *txn, const struct pick *p, int64_t now_us,
                   struct plan *plan)
{
    memset(plan, 0, sizeof *plan);
    unsigned char id_key[8];
    voc_key_set_u64(id_key, p->id);
    MDB_val v;
    int rc = voc_txn_get(txn, VOC_DB_OUTBOX, id_key, sizeof id_key, &v);
    if (rc == MDB_NOTFOUND) {
        plan->outcome = immediate(n, p, RESULT_DROP, "", 0, NULL);
        return 0;
    }
    if (rc)
        return rc;
    json_t *entry = json_loadb(v.mv_data, v.mv_size, 0, NULL);
    const char *status = voc_json_str(entry, "status");
    if (!entry || !status || strcmp(status, "pending") != 0) {
        json_decref(entry);
        plan->outcome = immediate(n, p, RESULT_DROP, "", 0, NULL);
        return 0;
    }
    const char *name = voc_json_str(entry, "notifier");
    uint64_t case_id = (uint64_t)voc_json_int(entry, "case_id", 0);
    const struct notifier *x = find_notifier(n, name);
    if (!x) {
        char error[300];
        snprintf(error, sizeof error,
                 "no notifier named '%.200s' in the configuration (a typo in the profile, or "
                 "removed by a reload)",
                 name ? name : "");
        plan->outcome = immediate(n, p, RESULT_FAILED, name, case_id, error);
        json_decref(entry);
        return 0;
    }
    int64_t created_us = now_us;
    const char *created = voc_json_str(entry, "created_at");
    if (created)
        voc_parse_time(created, &created_us);
    int64_t expire_at = x->expire_s > 0 ? created_us + (int64_t)(x->expire_s * 1e6) : INT64_MAX;
    if (now_us > expire_at) {
        /* vocd was down past the expiry (or the expiry was shortened by a reload). */
        char error[200];
        snprintf(error, sizeof error, "expired before it could be sent (expire %gs)", x->expire_s);
        plan->outcome = immediate(n, p, RESULT_FAILED, name, case_id, error);
        json_decref(entry);
        return 0;
    }

    json_t *record = NULL, *event = NULL, *summary = NULL;
    rc = voc_casedb_get(txn, case_id, &record);
    if (rc == 0)
        summary = voc_case_summary(record);
    else if (rc != MDB_NOTFOUND)
        goto out;
    long long seq = voc_json_int(entry, "event_seq", 0);
    if (seq > 0 && (rc = get_event(txn, case_id, (uint32_t)seq, &event)) != 0)
        goto out;
    rc = 0;
    unsigned number = (unsigned)voc_json_int(entry, "attempts", 0) + 1;

    if (x->type == VOC_NOTIFIER_LOG) {
        log_delivery(x, entry, event, case_id, p->id);
        plan->outcome = immediate(n, p, RESULT_SENT, name, case_id, NULL);
        if (plan->outcome)
            plan->outcome->attempted = true;
        goto out;
    }

    json_t *payload = voc_notify_payload(entry, summary, event, number);
    struct attempt *a = calloc(1, sizeof *a);
    char error[200] = "";
    int setup = -1;
    if (a && payload) {
        a->n = n;
        a->id = p->id;
        memcpy(a->due_key, p->key, DUE_KEY_LEN);
        a->case_id = case_id;
        a->number = number;
        a->type = x->type;
        a->notifier = strdup(x->name);
        a->expire_at_us = expire_at;
        a->easy = curl_easy_init();
        if (a->easy && a->notifier) {
            if (x->type == VOC_NOTIFIER_WEBHOOK)
                setup = webhook_setup(a, x, payload, now_us);
            else
                setup = email_setup(a, x, entry, payload, created_us, now_us, error, sizeof error);
        }
    }
    json_decref(payload);
    if (setup == 0) {
        plan->attempt = a;
    } else {
        if (a)
            attempt_free(a);
        if (error[0]) {
            /* A notifier that can never work as configured: retrying would not help. */
            plan->outcome = immediate(n, p, RESULT_FAILED, name, case_id, error);
        }
    }
out:
    json_decref(summary);
    json_decref(record);
    json_decref(event);
    json_decref(entry);
    return rc;
}

static void start_attempt(struct voc_notify *n, struct attempt *a)
{
    if (voc_curl_loop_add(n->curl, a->easy, on_transfer_done, a) == 0)
        return;
    struct outcome_job *j =
        outcome_new(n, a->id, a->due_key, RESULT_RETRY, a->notifier, a->case_id);
    if (j) {
        j->attempted = true;
        j->expire_at_us = a->expire_at_us;
        j->backoff_us = voc_notify_backoff_us(a->number, next_random(n));
        j->error = strdup("the transfer could not be started");
        outcome_submit(n, j);
    } else {
        in_flight_remove(n, a->id);
    }
    attempt_free(a);
}

static void pump(struct voc_notify *n)
{
    if (n->stopping)
        return;
    flush_unsent(n);
    if (n->unsent_head) {
        /* The writer is full: picking more would only pile up more outcomes. */
        arm_timer(n, voc_now_us() + RESUBMIT_DELAY_US);
        return;
    }
    if (n->draining)
        return;
    int64_t now = voc_now_us();
    if (now < n->hold_until_us) {
        arm_timer(n, n->hold_until_us);
        return;
    }
    size_t slots = MAX_IN_FLIGHT - n->in_flight_count;
    if (slots == 0)
        return; /* every finished attempt wakes us again */

    struct pick picks[MAX_IN_FLIGHT];
    struct plan plans[MAX_IN_FLIGHT];
    struct scan_state st = {
        .n = n, .now_us = now, .picks = picks, .max = slots, .next_due_us = INT64_MAX};
    struct voc_txn txn;
    int rc = voc_txn_begin_read(n->store, &txn);
    bool open = rc == 0;
    if (open && mdb_txn_id(txn.txn) > voc_store_durable_txnid(n->store)) {
        /* The newest commit is not on disk yet (the writer syncs it with the next batch or
         * when it goes idle): a notification sent from it could outlive a power loss that
         * takes its event back, and then go out again under another id. The writer's next
         * hand-back wakes us; the timer is the fallback. */
        voc_txn_abort(&txn);
        arm_timer(n, now + DURABLE_WAIT_US);
        return;
    }
    if (open)
        rc = voc_txn_scan(&txn, VOC_DB_OUTBOX_DUE, NULL, 0, NULL, 0, NULL, 0, false, scan_due, &st);
    size_t planned = 0;
    while (rc == 0 && planned < st.count) {
        rc = prepare(n, &txn, &picks[planned], now, &plans[planned]);
        if (rc == 0)
            planned++;
    }
    if (open)
        voc_txn_abort(&txn);
    if (rc) {
        voc_error("notify", "cannot read the outbox error=\"%s\"", mdb_strerror(rc));
        for (size_t i = 0; i < planned; i++) {
            if (plans[i].attempt)
                attempt_free(plans[i].attempt);
            if (plans[i].outcome)
                outcome_free(plans[i].outcome);
        }
        n->hold_until_us = now + HOLD_AFTER_STORE_ERROR_US;
        arm_timer(n, n->hold_until_us);
        return;
    }
    bool skipped = false;
    for (size_t i = 0; i < planned; i++) {
        if (!plans[i].attempt && !plans[i].outcome) {
            skipped = true; /* out of memory: the entry stays due */
            continue;
        }
        n->in_flight[n->in_flight_count++] = picks[i].id;
        if (plans[i].attempt)
            start_attempt(n, plans[i].attempt);
        else
            outcome_submit(n, plans[i].outcome);
    }
    if (skipped)
        arm_timer(n, now + HOLD_AFTER_STORE_ERROR_US);
    if (!st.more && st.next_due_us != INT64_MAX)
        arm_timer(n, st.next_due_us);
}

static void on_pump(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pump(arg);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct voc_notify *n = arg;
    n->timer_at_us = INT64_MAX;
    pump(n);
}

/* ---- metrics ---- */

static void collect_metrics(struct evbuffer *out, void *arg)
{
    struct voc_notify *n = arg;
    struct voc_store_info info;
    if (voc_store_info(n->store, &info) == 0)
        voc_metrics_write_gauge(out, "vocd_notifications_pending", NULL,
                                "Notifications waiting for delivery or a retry",
                                (double)info.entries[VOC_DB_OUTBOX_DUE]);
    voc_metrics_write_gauge(out, "vocd_notifications_in_flight", NULL,
                            "Notification deliveries under way", (double)n->in_flight_count);
}

/* Every configured notifier shows up with zeros from the start, not at its first outcome. */
static void register_outcomes(const struct voc_notify *n)
{
    for (size_t i = 0; i < n->notifier_count; i++)
        for (int r = RESULT_SENT; r <= RESULT_FAILED; r++)
            outcome_metric(n->notifiers[i].name, (enum result)r);
}

/* ---- life cycle ---- */

int voc_notify_start(struct voc_notify **out, struct event_base *base, struct voc_store *store,
                     struct voc_writer *writer, const struct voc_config *cfg)
{
    *out = NULL;
    /* Once per process, on the main thread before any transfer (libcurl's rule). */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return -1;
    struct voc_notify *n = calloc(1, sizeof *n);
    if (!n) {
        curl_global_cleanup();
        return -1;
    }
    n->base = base;
    n->store = store;
    n->writer = writer;
    n->timer_at_us = INT64_MAX;
    n->rng = (uint64_t)voc_now_us() ^ ((uint64_t)getpid() << 32) ^ UINT64_C(0x9e3779b97f4a7c15);
    n->notifiers = notifiers_copy(cfg);
    n->notifier_count = n->notifiers ? cfg->notifier_count : 0;
    n->pump_event = event_new(base, -1, 0, on_pump, n);
    n->timer = evtimer_new(base, on_timer, n);
    if (!n->notifiers || !n->pump_event || !n->timer || voc_curl_loop_new(&n->curl, base) != 0) {
        voc_notify_free(n);
        return -1;
    }
    register_outcomes(n);
    voc_metrics_add_collector(collect_metrics, n);
    voc_notify_wake(n);
    *out = n;
    return 0;
}

void voc_notify_reload(struct voc_notify *n, const struct voc_config *cfg)
{
    if (!n)
        return;
    struct notifier *list = notifiers_copy(cfg);
    if (!list) {
        voc_error("notify", "out of memory: the notifiers stay as they were");
        return;
    }
    notifiers_free(n->notifiers, n->notifier_count);
    n->notifiers = list;
    n->notifier_count = cfg->notifier_count;
    register_outcomes(n);
    voc_notify_wake(n);
}

void voc_notify_drain(struct voc_notify *n)
{
    if (n)
        n->draining = true;
}

bool voc_notify_idle(const struct voc_notify *n)
{
    return !n || (n->in_flight_count == 0 && !n->unsent_head);
}

void voc_notify_stop(struct voc_notify *n)
{
    if (!n || n->stopping)
        return;
    /* Outcomes already known go to the writer while it still runs. */
    flush_unsent(n);
    n->stopping = true;
    size_t aborted = voc_curl_loop_active(n->curl);
    voc_curl_loop_free(n->curl);
    n->curl = NULL;
    if (aborted)
        voc_info("notify",
                 "stopped with deliveries under way count=%zu: they stay pending and "
                 "are sent again (same Idempotency-Key) after the restart",
                 aborted);
    while (n->unsent_head) {
        struct outcome_job *j = n->unsent_head;
        n->unsent_head = j->next_unsent;
        voc_warn("notify", "outcome not recorded at shutdown id=%llu outcome=%s",
                 (unsigned long long)j->id, result_names[j->asked]);
        in_flight_remove(n, j->id);
        outcome_free(j);
    }
    n->unsent_tail = NULL;
    if (n->timer)
        evtimer_del(n->timer);
    if (n->pump_event)
        event_del(n->pump_event);
}

void voc_notify_free(struct voc_notify *n)
{
    if (!n)
        return;
    voc_notify_stop(n);
    voc_metrics_remove_collector(collect_metrics, n);
    if (n->timer)
        event_free(n->timer);
    if (n->pump_event)
        event_free(n->pump_event);
    notifiers_free(n->notifiers, n->notifier_count);
    free(n);
    curl_global_cleanup();
}
