/* The e-mail channel: an LMTP listener for the MTA and an optional Maildir, both feeding
 * the same delivery path: parse (mime_parse.c) -> thread into an existing case or open a
 * new one -> store attachments -> submit -> answer (LMTP reply per recipient, or move the
 * Maildir file) only once the core says the write is durable. */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <jansson.h>
#include <glib.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>
#include <vocd/plugin.h>

#include "ack.h"
#include "attachments.h"
#include "lmtp_session.h"
#include "maildir.h"
#include "mime_parse.h"
#include "worker.h"

#define CHANNEL "email"
/* The core keeps an event's note up to 64 KiB. */
#define MAX_NOTE (64 * 1024 - 16)
/* Auto-replies and bounces are recorded briefly. */
#define MAX_AUTO_NOTE (4 * 1024)
/* Longest reference kept as is; longer Message-IDs are stored by their hash. */
#define MAX_REF_LEN 240
/* References looked up for threading, newest first. */
#define MAX_LOOKUPS 32

struct attachment_limits {
    uint64_t max_size;
    long long max_count;
};

struct ack_config {
    char *notifier;
    char *subject;
    char *text;
    char *text_without_due;
    char *clock;
    char *time_zone;
    char *time_format;
};

struct email_config {
    struct ack_config acknowledge;
    char *lmtp;
    char *maildir;
    uint64_t max_message_size;
    struct attachment_limits attachments;
    long long max_mime_depth;
    long long max_mime_parts;
    uint64_t max_text_size;
    char **charsets;
    size_t charset_count;
    char *hostname;
    long long max_connections;
    long long max_recipients;
    double timeout;
    double maildir_rescan;
    long long maildir_parallel;
};

static const struct voc_option attachment_options[] = {
    {"max_size", VOC_OPT_SIZE, offsetof(struct attachment_limits, max_size), "20MB", 0,
     "largest attachment (decoded); a message with a larger one is refused (552)", NULL, 0, 0, NULL,
     0, 0},
    {"max_count", VOC_OPT_INT, offsetof(struct attachment_limits, max_count), "50", 0,
     "most attachments in one message (more: refused)", NULL, 0, 0, NULL, 1, 1000},
    {0},
};

/* The acknowledgement's default body, in Chinese and English: customers of a mainland site
 * write Chinese, the site's partners often English. */
#define ACK_DEFAULT_TEXT                                                                                 \
    "您好：\n\n您的来信已收到，受理编号 {case}，我们将在 {due} 之前答复您。\n" \
    "如需补充信息，请直接回复本邮件，并保留主题中的 [VOC-{case}]。\n\n"          \
    "Hello,\n\nyour message has been received as case {case} and will be answered by {due}.\n"           \
    "To add anything, reply to this mail and keep [VOC-{case}] in the subject.\n"
#define ACK_DEFAULT_TEXT_WITHOUT_DUE                                                               \
    "您好：\n\n您的来信已收到，受理编号 {case}。\n"                                \
    "如需补充信息，请直接回复本邮件，并保留主题中的 [VOC-{case}]。\n\n"    \
    "Hello,\n\nyour message has been received as case {case}.\n"                                   \
    "To add anything, reply to this mail and keep [VOC-{case}] in the subject.\n"

static const struct voc_option ack_options[] = {
    {"notifier", VOC_OPT_STRING, offsetof(struct ack_config, notifier), NULL, 0,
     "e-mail notifier (notifiers:) that sends the acknowledgement; unset = none is sent", NULL, 0,
     0, NULL, 0, 0},
    {"subject", VOC_OPT_STRING, offsetof(struct ack_config, subject), "Re: {subject}", 0,
     "subject after \"[VOC-<id>] \"; {case}, {subject}, {name}, {due}", NULL, 0, 0, NULL, 0, 0},
    /* No table default for the bodies: several lines would break `vocd --options`. */
    {"text", VOC_OPT_STRING, offsetof(struct ack_config, text), NULL, 0,
     "body when a running clock promises a due time (default: a short Chinese and English "
     "text, docs/email.md)",
     NULL, 0, 0, NULL, 0, 0},
    {"text_without_due", VOC_OPT_STRING, offsetof(struct ack_config, text_without_due), NULL, 0,
     "body when no running clock has a due time (default: as text, without the promise)", NULL, 0,
     0, NULL, 0, 0},
    {"clock", VOC_OPT_STRING, offsetof(struct ack_config, clock), NULL, 0,
     "the profile clock whose due time is promised (default: the first running one)", NULL, 0, 0,
     NULL, 0, 0},
    {"time_zone", VOC_OPT_STRING, offsetof(struct ack_config, time_zone), NULL, 0,
     "time zone of {due}, e.g. Asia/Shanghai (default: the host's)", NULL, 0, 0, NULL, 0, 0},
    {"time_format", VOC_OPT_STRING, offsetof(struct ack_config, time_format),
     "%Y-%m-%d %H:%M (UTC%:z)", 0, "g_date_time_format() pattern of {due}", NULL, 0, 0, NULL, 0, 0},
    {0},
};

static const struct voc_option email_options[] = {
    {"acknowledge", VOC_OPT_TABLE, offsetof(struct email_config, acknowledge), NULL, 0,
     "acknowledgement mail to the sender of a message that opened a case", ack_options, 0, 0, NULL,
     0, 0},
    {"lmtp", VOC_OPT_STRING, offsetof(struct email_config, lmtp), NULL, 0,
     "LMTP listener host:port for the MTA (port 0 = any free port)", NULL, 0, 0, NULL, 0, 0},
    {"maildir", VOC_OPT_PATH, offsetof(struct email_config, maildir), NULL, 0,
     "a Maildir whose new/ is consumed (fetchmail, getmail, Dovecot)", NULL, 0, 0, NULL, 0, 0},
    {"max_message_size", VOC_OPT_SIZE, offsetof(struct email_config, max_message_size), "25MB", 0,
     "largest message accepted (SIZE, 552 beyond)", NULL, 0, 0, NULL, 0, 0},
    {"attachments", VOC_OPT_TABLE, offsetof(struct email_config, attachments), NULL, 0,
     "attachment limits", attachment_options, 0, 0, NULL, 0, 0},
    {"max_mime_depth", VOC_OPT_INT, offsetof(struct email_config, max_mime_depth), "32", 0,
     "deepest MIME nesting accepted (deeper: refused 554)", NULL, 0, 0, NULL, 1, 1000},
    {"max_mime_parts", VOC_OPT_INT, offsetof(struct email_config, max_mime_parts), "500", 0,
     "most MIME parts in one message (more: refused 554)", NULL, 0, 0, NULL, 1, 100000},
    {"max_text_size", VOC_OPT_SIZE, offsetof(struct email_config, max_text_size), "256KiB", 0,
     "body text kept on the case (the rest is cut)", NULL, 0, 0, NULL, 0, 0},
    {"charsets", VOC_OPT_STRING_LIST, offsetof(struct email_config, charsets), NULL, 0,
     "charsets tried, in order, for undeclared 8-bit text (default: UTF-8, GB18030)", NULL, 0,
     offsetof(struct email_config, charset_count), NULL, 0, 0},
    {"hostname", VOC_OPT_STRING, offsetof(struct email_config, hostname), NULL, 0,
     "name in the LMTP greeting (default: the host name)", NULL, 0, 0, NULL, 0, 0},
    {"max_connections", VOC_OPT_INT, offsetof(struct email_config, max_connections), "64", 0,
     "simultaneous LMTP connections (more: 421)", NULL, 0, 0, NULL, 1, 100000},
    {"max_recipients", VOC_OPT_INT, offsetof(struct email_config, max_recipients), "100", 0,
     "recipients per LMTP transaction (more: 452)", NULL, 0, 0, NULL, 1, 10000},
    {"timeout", VOC_OPT_DURATION, offsetof(struct email_config, timeout), "5m", 0,
     "idle LMTP connection timeout", NULL, 0, 0, NULL, 0, 0},
    {"maildir_rescan", VOC_OPT_DURATION, offsetof(struct email_config, maildir_rescan), "30s", 0,
     "Maildir rescan period (besides inotify), also the retry delay", NULL, 0, 0, NULL, 0, 0},
    {"maildir_parallel", VOC_OPT_INT, offsetof(struct email_config, maildir_parallel), "8", 0,
     "Maildir messages in flight at once", NULL, 0, 0, NULL, 1, 1000},
    {0},
};

struct email_state;

struct lmtp_conn {
    struct email_state *st;
    struct bufferevent *bev;
    struct voc_lmtp_session *session;
    struct lmtp_conn *prev, *next;
    bool busy;    /* a delivery is in flight */
    bool in_feed; /* inside voc_lmtp_feed: the feed loop goes on by itself */
    bool closing; /* free once the output is flushed */
    bool dead;    /* socket gone while busy: free when the delivery ends */
    char peer[64];
};

struct email_state {
    struct voc_plugin *p;
    const struct voc_core_api *api;
    const struct email_config *cfg;
    struct event_base *base;
    char *attach_root;
    char *hostname;
    struct evconnlistener *listener;
    struct lmtp_conn *conns;
    size_t conn_count;
    struct voc_maildir *maildir;
    struct voc_worker *worker;
    bool stopped;
    size_t jobs;         /* deliveries in flight */
    GTimeZone *ack_zone; /* of the current config's acknowledge.time_zone */
    struct voc_counter *c_received, *c_cases, *c_messages, *c_auto, *c_duplicates, *c_rejected,
        *c_tempfail, *c_acks;
};

/* ---- the outcome of one delivery ------------------------------------------------------------ */

enum outcome_class { OUT_OK, OUT_TEMP, OUT_PERM };

struct outcome {
    enum outcome_class cls;
    int code;
    const char *enhanced;
    char text[400];
};

typedef void (*delivery_done)(void *arg, const struct outcome *o);

struct delivery {
    struct voc_worker_item item; /* first: the worker's queue link */
    struct email_state *st;
    /* input, borrowed: the LMTP session or the Maildir item keeps it until `done` */
    const char *data;
    size_t len;
    struct voc_mail_limits limits;
    char **charsets; /* a copy: a reload may free the config's list meanwhile */
    /* filled on the worker thread */
    enum voc_mail_status parse_status;
    char parse_err[300];
    bool store_failed;
    int store_errno;
    char store_err[600];
    struct voc_mail *mail;
    char key[MAX_REF_LEN + 8]; /* external_id / event ref */
    json_t *attachments;       /* [{name,type,size,sha256}] */
    /* routing, on the loop */
    char *envelope_from;
    char **recipients;
    size_t recipient_count;
    uint64_t thread_case;
    struct outcome held; /* the answer, given once the acknowledgement is queued */
    delivery_done done;
    void *arg;
};

static void set_outcome(struct outcome *o, enum outcome_class cls, int code, const char *enhanced,
                        const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void set_outcome(struct outcome *o, enum outcome_class cls, int code, const char *enhanced,
                        const char *fmt, ...)
{
    o->cls = cls;
    o->code = code;
    o->enhanced = enhanced;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(o->text, sizeof o->text, fmt, ap);
    va_end(ap);
    /* SMTP reply text is one line of ASCII */
    for (char *c = o->text; *c; c++)
        if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
            *c = '?';
}

static void delivery_free(struct delivery *d)
{
    voc_mail_free(d->mail);
    g_strfreev(d->charsets);
    free(d->envelope_from);
    for (size_t i = 0; i < d->recipient_count; i++)
        free(d->recipients[i]);
    free(d->recipients);
    json_decref(d->attachments);
    free(d);
}

static void finish(struct delivery *d, const struct outcome *o)
{
    struct email_state *st = d->st;
    if (o->cls == OUT_PERM)
        st->api->counter_add(st->c_rejected, 1);
    else if (o->cls == OUT_TEMP)
        st->api->counter_add(st->c_tempfail, 1);
    st->jobs--;
    d->done(d->arg, o);
    delivery_free(d);
}

/* A Message-ID as a lookup key: itself when short, else its hash. */
static void reference_key(const char *id, char *out, size_t outlen)
{
    if (strlen(id) <= MAX_REF_LEN) {
        snprintf(out, outlen, "%s", id);
        return;
    }
    gchar *hex = g_compute_checksum_for_string(G_CHECKSUM_SHA256, id, -1);
    snprintf(out, outlen, "sha256:%s", hex);
    g_free(hex);
}

/* "[VOC-123]" anywhere in text (case-insensitive) */
static bool subject_case(const char *text, uint64_t *id)
{
    if (!text)
        return false;
    for (const char *p = text; (p = strchr(p, '[')); p++) {
        if (strncasecmp(p + 1, "VOC-", 4) != 0)
            continue;
        const char *q = p + 5;
        uint64_t v = 0;
        int digits = 0;
        while (*q >= '0' && *q <= '9' && digits < 19) {
            v = v * 10 + (uint64_t)(*q - '0');
            q++;
            digits++;
        }
        if (digits > 0 && *q == ']' && v > 0) {
            *id = v;
            return true;
        }
    }
    return false;
}

/* 0 = none found, 1 = found (*case_id), -1 = the store could not be read */
static int find_thread(struct email_state *st, const struct voc_mail *m, uint64_t *case_id)
{
    const char *ids[MAX_LOOKUPS + 1];
    size_t n = 0;
    if (m->original_message_id)
        ids[n++] = m->original_message_id;
    for (size_t i = 0; i < m->reference_count && n < MAX_LOOKUPS; i++)
        ids[n++] = m->references[i];
    for (size_t i = 0; i < n; i++) {
        char key[MAX_REF_LEN + 8];
        reference_key(ids[i], key, sizeof key);
        int rc = st->api->find_case(st->p, CHANNEL, key, case_id);
        if (rc != 0)
            return rc;
    }
    if (subject_case(m->subject, case_id) || subject_case(m->original_subject, case_id))
        return 1;
    return 0;
}

/* Cut UTF-8 text to at most max bytes on a character boundary. */
static json_t *json_text(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n > max) {
        n = max;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    }
    return json_stringn(s, n);
}

static char *from_text(const struct voc_mail *m)
{
    if (m->from_name[0] && m->from_addr[0])
        return g_strdup_printf("%s <%s>", m->from_name, m->from_addr);
    return g_strdup(m->from_addr[0] ? m->from_addr : m->from_name);
}

/* ---- acknowledgement ------------------------------------------------------------------------- */

/* The notification asking the core to mail the sender (docs/email.md, "Acknowledgement
 * mail"), as JSON for api->notify; NULL (logged) when nothing is to be sent: an unusable
 * sender address, or — for a re-delivery — a case this message did not open. */
static char *ack_request(struct delivery *d, uint64_t case_id, bool created)
{
    struct email_state *st = d->st;
    const struct ack_config *ack = &st->cfg->acknowledge;
    const struct voc_mail *m = d->mail;
    char *view_text = NULL;
    size_t view_len = 0;
    json_t *view = NULL;
    if (st->api->case_get(st->p, case_id, &view_text, &view_len) == 1)
        view = json_loadb(view_text, view_len, 0, NULL);
    free(view_text);
    const char *external_id = json_string_value(json_object_get(view, "external_id"));
    const char *channel = json_string_value(json_object_get(view, "channel"));
    bool opener =
        external_id && channel && strcmp(external_id, d->key) == 0 && strcmp(channel, CHANNEL) == 0;
    if (!created && !opener) {
        /* A re-delivered reply: its Message-ID is known, but it did not open the case. */
        json_decref(view);
        return NULL;
    }
    if (!voc_ack_address_ok(m->from_addr)) {
        st->api->log(st->p, VOC_PLOG_INFO,
                     "no acknowledgement: the sender address is not usable case=%llu from=\"%s\"",
                     (unsigned long long)case_id, m->from_addr);
        json_decref(view);
        return NULL;
    }
    int64_t due = 0;
    bool has_due = view && voc_ack_due(view, ack->clock, &due);
    json_decref(view);
    char *due_text = has_due ? voc_ack_format_time(due, st->ack_zone, ack->time_format) : NULL;
    struct voc_ack_values values = {
        .case_id = case_id, .subject = m->subject, .name = m->from_name, .due = due_text};
    char *subject = voc_ack_render(ack->subject, &values);
    const char *body =
        due_text ? (ack->text ? ack->text : ACK_DEFAULT_TEXT)
                 : (ack->text_without_due ? ack->text_without_due : ACK_DEFAULT_TEXT_WITHOUT_DUE);
    char *text = voc_ack_render(body, &values);
    json_t *req = json_pack("{s:s, s:s, s:s, s:[s]}", "notifier", ack->notifier, "message", subject,
                            "text", text, "to", m->from_addr);
    if (req && m->message_id && voc_ack_message_id_ok(m->message_id))
        json_object_set_new(req, "in_reply_to", json_string(m->message_id));
    char *json = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    g_free(due_text);
    g_free(subject);
    g_free(text);
    return json;
}

static void on_ack_result(void *arg, const struct voc_submit_result *r)
{
    struct delivery *d = arg;
    struct email_state *st = d->st;
    switch (r->status) {
    case VOC_SUBMIT_CREATED:
        st->api->counter_add(st->c_acks, 1);
        st->api->log(st->p, VOC_PLOG_INFO, "acknowledgement queued case=%llu to=%s",
                     (unsigned long long)r->case_id, d->mail->from_addr);
        break;
    case VOC_SUBMIT_EXISTS:
        break; /* queued by an earlier delivery of this message */
    case VOC_SUBMIT_INVALID:
        /* A configuration problem (no such notifier): retrying would not help, the case
         * stands and the MTA gets its 250. */
        st->api->log(st->p, VOC_PLOG_ERROR, "acknowledgement refused case=%llu reason=\"%s\"",
                     (unsigned long long)r->case_id, r->message ? r->message : "?");
        break;
    default:
        /* The case is durable but its acknowledgement is not: a temporary failure makes the
         * MTA (or the Maildir rescan) deliver again, and the re-delivery queues it. */
        set_outcome(&d->held, OUT_TEMP, 451, "4.3.0",
                    "case %llu stored, its acknowledgement not yet: try again later",
                    (unsigned long long)r->case_id);
        break;
    }
    finish(d, &d->held);
}

/* The message's case exists — just created, or by an earlier delivery. Queue the
 * acknowledgement (once per message: its key is the notification's ref), and give answer
 * `o` only once that is durable, so that a crash in between ends in a re-delivery that
 * queues it rather than in a customer who never hears back. */
static void acknowledge_then_finish(struct delivery *d, uint64_t case_id, bool created,
                                    const struct outcome *o)
{
    struct email_state *st = d->st;
    const struct ack_config *ack = &st->cfg->acknowledge;
    /* A configured notifier implies a core with notify and case_get (ack_settings). */
    if (!ack->notifier || !ack->notifier[0] || !d->mail || d->mail->kind != VOC_MAIL_NORMAL) {
        finish(d, o);
        return;
    }
    char *json = ack_request(d, case_id, created);
    if (!json) {
        finish(d, o);
        return;
    }
    d->held = *o;
    char ref[MAX_REF_LEN + 16];
    snprintf(ref, sizeof ref, "ack:%s", d->key);
    int rc = st->api->notify(st->p, case_id, json, strlen(json), ref, on_ack_result, d);
    free(json);
    if (rc != 0) {
        struct outcome busy;
        set_outcome(&busy, OUT_TEMP, 451, "4.3.2",
                    "case %llu stored, vocd is busy or shutting down: try again later",
                    (unsigned long long)case_id);
        finish(d, &busy);
    }
}

/* ---- submissions ----------------------------------------------------------------------------- */

static void submit_new_case(struct delivery *d);

static void temp_from_result(struct outcome *o, const struct voc_submit_result *r)
{
    set_outcome(o, OUT_TEMP, 452, "4.3.1",
                "case store cannot take the message now (%s), "
                "try again later",
                r->message ? r->message : "unavailable");
}

static void on_case_result(void *arg, const struct voc_submit_result *r)
{
    struct delivery *d = arg;
    struct email_state *st = d->st;
    struct outcome o;
    switch (r->status) {
    case VOC_SUBMIT_CREATED:
        st->api->counter_add(st->c_cases, 1);
        st->api->log(st->p, VOC_PLOG_INFO, "case created case=%llu message_id=%s from=%s",
                     (unsigned long long)r->case_id, d->key, d->mail->from_addr);
        set_outcome(&o, OUT_OK, 250, "2.0.0", "case %llu created", (unsigned long long)r->case_id);
        acknowledge_then_finish(d, r->case_id, true, &o);
        return;
    case VOC_SUBMIT_EXISTS:
    case VOC_SUBMIT_APPENDED:
        st->api->counter_add(st->c_duplicates, 1);
        set_outcome(&o, OUT_OK, 250, "2.0.0", "already delivered (case %llu)",
                    (unsigned long long)r->case_id);
        acknowledge_then_finish(d, r->case_id, false, &o);
        return;
    case VOC_SUBMIT_INVALID:
        st->api->log(st->p, VOC_PLOG_WARN, "message refused by the core message_id=%s error=\"%s\"",
                     d->key, r->message ? r->message : "?");
        set_outcome(&o, OUT_PERM, 554, "5.6.0", "message refused: %s",
                    r->message ? r->message : "invalid");
        break;
    default:
        temp_from_result(&o, r);
        break;
    }
    finish(d, &o);
}

static void on_event_result(void *arg, const struct voc_submit_result *r)
{
    struct delivery *d = arg;
    struct email_state *st = d->st;
    struct outcome o;
    bool auto_mail = d->mail->kind != VOC_MAIL_NORMAL;
    const char *what = d->mail->kind == VOC_MAIL_BOUNCE       ? "bounce"
                       : d->mail->kind == VOC_MAIL_AUTO_REPLY ? "auto-reply"
                                                              : "reply";
    switch (r->status) {
    case VOC_SUBMIT_APPENDED:
        st->api->counter_add(auto_mail ? st->c_auto : st->c_messages, 1);
        st->api->log(st->p, VOC_PLOG_INFO, "%s recorded on case=%llu message_id=%s", what,
                     (unsigned long long)r->case_id, d->key);
        set_outcome(&o, OUT_OK, 250, "2.0.0", "%s recorded on case %llu", what,
                    (unsigned long long)r->case_id);
        break;
    case VOC_SUBMIT_EXISTS:
    case VOC_SUBMIT_CREATED:
        st->api->counter_add(st->c_duplicates, 1);
        set_outcome(&o, OUT_OK, 250, "2.0.0", "already delivered (case %llu)",
                    (unsigned long long)r->case_id);
        break;
    case VOC_SUBMIT_INVALID:
        if (auto_mail) {
            /* no case to put it on (a [VOC-id] that does not exist): logged, not kept */
            st->api->log(st->p, VOC_PLOG_INFO,
                         "%s not recorded case=%llu message_id=%s reason=\"%s\"", what,
                         (unsigned long long)d->thread_case, d->key, r->message ? r->message : "?");
            set_outcome(&o, OUT_OK, 250, "2.0.0", "%s logged, no case", what);
            break;
        }
        /* The case it answers is gone or refuses the event: the mail still has to be kept,
         * so it opens a case of its own. */
        st->api->log(st->p, VOC_PLOG_WARN,
                     "reply cannot go on case=%llu (%s): opening a new case message_id=%s",
                     (unsigned long long)d->thread_case, r->message ? r->message : "?", d->key);
        submit_new_case(d);
        return;
    default:
        temp_from_result(&o, r);
        break;
    }
    finish(d, &o);
}

static void busy_outcome(struct outcome *o)
{
    set_outcome(o, OUT_TEMP, 451, "4.3.2", "vocd is busy or shutting down, try again later");
}

static void submit_new_case(struct delivery *d)
{
    struct email_state *st = d->st;
    const struct voc_mail *m = d->mail;
    char *from = from_text(m);
    json_t *recipients = json_array();
    for (size_t i = 0; i < d->recipient_count; i++)
        json_array_append_new(recipients, json_string(d->recipients[i]));
    json_t *fields = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:s}", "message_id",
                               m->message_id ? m->message_id : "", "from", from, "to", m->to, "cc",
                               m->cc, "date", m->date, "recipients", recipients, "body",
                               m->text_from_html ? "html" : "plain");
    g_free(from);
    if (d->envelope_from)
        json_object_set_new(fields, "envelope_from", json_string(d->envelope_from));
    if (m->text_truncated)
        json_object_set_new(fields, "text_truncated", json_true());
    if (m->text_lossy)
        json_object_set_new(fields, "text_lossy", json_true());
    if (d->thread_case)
        json_object_set_new(fields, "in_reply_to_case", json_integer((json_int_t)d->thread_case));
    if (!d->attachments)
        d->attachments = json_array();
    const char *subject = m->subject[0] || m->text[0] ? m->subject : "(no subject)";
    json_t *record = json_pack("{s:s, s:s, s:s, s:{s:s, s:s}, s:s, s:s, s:O, s:o}", "external_id",
                               d->key, "channel", CHANNEL, "source", "customer", "customer", "name",
                               m->from_name, "contact", m->from_addr, "subject", subject, "text",
                               m->text, "attachments", d->attachments, "fields", fields);
    char *json = record ? json_dumps(record, JSON_COMPACT) : NULL;
    json_decref(record);
    struct outcome o;
    if (!json) {
        set_outcome(&o, OUT_TEMP, 451, "4.3.0", "out of memory");
        finish(d, &o);
        return;
    }
    int rc = st->api->submit_case(st->p, json, strlen(json), NULL, on_case_result, d);
    free(json);
    if (rc != 0) {
        busy_outcome(&o);
        finish(d, &o);
    }
}

static void submit_thread_event(struct delivery *d)
{
    struct email_state *st = d->st;
    const struct voc_mail *m = d->mail;
    bool auto_mail = m->kind != VOC_MAIL_NORMAL;
    json_t *data =
        json_pack("{s:s, s:s, s:s, s:s}", "subject", m->subject, "from", m->from_addr, "from_name",
                  m->from_name, "message_id", m->message_id ? m->message_id : d->key);
    if (auto_mail) {
        json_object_set_new(data, "kind",
                            json_string(m->kind == VOC_MAIL_BOUNCE ? "bounce" : "auto_reply"));
        json_object_set_new(data, "reason", json_string(m->kind_reason ? m->kind_reason : ""));
        if (m->original_message_id)
            json_object_set_new(data, "original_message_id", json_string(m->original_message_id));
    } else {
        json_object_set_new(data, "attachments", json_incref(d->attachments));
        if (m->text_from_html)
            json_object_set_new(data, "body", json_string("html"));
    }
    json_t *event =
        json_pack("{s:s, s:o, s:o}", "type", auto_mail ? "note" : "message", "note",
                  json_text(m->text, auto_mail ? MAX_AUTO_NOTE : MAX_NOTE), "data", data);
    char *json = event ? json_dumps(event, JSON_COMPACT) : NULL;
    json_decref(event);
    struct outcome o;
    if (!json) {
        set_outcome(&o, OUT_TEMP, 451, "4.3.0", "out of memory");
        finish(d, &o);
        return;
    }
    int rc = st->api->submit_event(st->p, d->thread_case, json, strlen(json), CHANNEL, d->key,
                                   on_event_result, d);
    free(json);
    if (rc != 0) {
        busy_outcome(&o);
        finish(d, &o);
    }
}

/* Write every attachment before the record that names it (worker thread: no core calls). */
static int store_attachments(struct delivery *d)
{
    d->attachments = json_array();
    for (size_t i = 0; i < d->mail->attachment_count; i++) {
        const struct voc_mail_attachment *a = &d->mail->attachments[i];
        char hex[65];
        if (voc_attach_put(d->st->attach_root, a->data, a->size, hex, NULL, d->store_err,
                           sizeof d->store_err) != 0) {
            d->store_errno = errno;
            d->store_failed = true;
            return -1;
        }
        /* mime_parse.c hands out valid UTF-8 names and sanitised types; should either ever
         * not be, json_pack would return NULL and the attachment would silently go missing
         * from a case whose file is stored. So: made valid here too, and a failure is one. */
        gchar *name = g_utf8_make_valid(a->name ? a->name : "", -1);
        gchar *type = g_utf8_make_valid(a->type ? a->type : "application/octet-stream", -1);
        json_t *item = json_pack("{s:s, s:s, s:I, s:s}", "name", name, "type", type, "size",
                                 (json_int_t)a->size, "sha256", hex);
        g_free(name);
        g_free(type);
        if (!item || json_array_append_new(d->attachments, item) != 0) {
            snprintf(d->store_err, sizeof d->store_err, "out of memory listing attachment %zu",
                     i + 1);
            d->store_errno = ENOMEM;
            d->store_failed = true;
            return -1;
        }
    }
    return 0;
}

static void outcome_from_parse(struct outcome *o, enum voc_mail_status status, const char *err)
{
    switch (status) {
    case VOC_MAIL_TOO_LARGE:
        set_outcome(o, OUT_PERM, 552, "5.3.4", "%s", err);
        break;
    case VOC_MAIL_NOMEM:
        set_outcome(o, OUT_TEMP, 451, "4.3.0", "out of memory, try again later");
        break;
    case VOC_MAIL_TOO_COMPLEX:
    case VOC_MAIL_TOO_MANY:
    case VOC_MAIL_MALFORMED:
    default:
        set_outcome(o, OUT_PERM, 554, "5.6.0", "%s", err);
        break;
    }
}

/* Worker thread: parse, name the message, store its attachments. */
static void work_delivery(struct voc_worker_item *item, void *arg)
{
    (void)arg;
    struct delivery *d = (struct delivery *)item;
    d->limits.fallback_charsets = (const char *const *)d->charsets;
    d->parse_status = voc_mail_parse(d->data, d->len, &d->limits, d->envelope_from, &d->mail,
                                     d->parse_err, sizeof d->parse_err);
    if (d->parse_status != VOC_MAIL_OK)
        return;
    if (d->mail->message_id) {
        reference_key(d->mail->message_id, d->key, sizeof d->key);
    } else {
        /* No Message-ID: the content itself identifies a re-delivery. */
        gchar *hex =
            g_compute_checksum_for_data(G_CHECKSUM_SHA256, (const guchar *)d->data, d->len);
        snprintf(d->key, sizeof d->key, "sha256:%s", hex);
        g_free(hex);
    }
    if (d->mail->kind == VOC_MAIL_NORMAL)
        store_attachments(d);
}

/* Back on the loop: route and submit. */
static void resume_delivery(struct voc_worker_item *item, void *arg)
{
    (void)arg;
    struct delivery *d = (struct delivery *)item;
    struct email_state *st = d->st;
    struct outcome o;
    if (d->parse_status != VOC_MAIL_OK) {
        st->api->log(st->p, VOC_PLOG_WARN, "message refused bytes=%zu sender=<%s> reason=\"%s\"",
                     d->len, d->envelope_from ? d->envelope_from : "?", d->parse_err);
        outcome_from_parse(&o, d->parse_status, d->parse_err);
        finish(d, &o);
        return;
    }
    if (d->store_failed) {
        st->api->log(st->p, VOC_PLOG_ERROR, "attachment not stored: %s", d->store_err);
        if (d->store_errno == ENOSPC || d->store_errno == EDQUOT)
            set_outcome(&o, OUT_TEMP, 452, "4.3.1", "insufficient storage for attachments");
        else
            set_outcome(&o, OUT_TEMP, 451, "4.3.0", "cannot store attachments now");
        finish(d, &o);
        return;
    }
    struct voc_mail *m = d->mail;
    uint64_t existing;
    int rc = st->api->find_case(st->p, CHANNEL, d->key, &existing);
    if (rc == 1) {
        st->api->counter_add(st->c_duplicates, 1);
        set_outcome(&o, OUT_OK, 250, "2.0.0", "already delivered (case %llu)",
                    (unsigned long long)existing);
        acknowledge_then_finish(d, existing, false, &o);
        return;
    }
    if (rc < 0 || (rc = find_thread(st, m, &d->thread_case)) < 0) {
        set_outcome(&o, OUT_TEMP, 451, "4.3.0", "case store cannot be read now");
        finish(d, &o);
        return;
    }
    if (m->kind != VOC_MAIL_NORMAL) {
        if (rc == 1) {
            submit_thread_event(d);
            return;
        }
        /* Never a case: an auto-reply with nothing to answer is only logged. */
        st->api->counter_add(st->c_auto, 1);
        st->api->log(st->p, VOC_PLOG_INFO,
                     "%s without a case, not recorded message_id=%s from=%s reason=\"%s\" "
                     "subject=\"%s\"",
                     m->kind == VOC_MAIL_BOUNCE ? "bounce" : "auto-reply", d->key, m->from_addr,
                     m->kind_reason ? m->kind_reason : "", m->subject);
        set_outcome(&o, OUT_OK, 250, "2.0.0", "%s logged, no case",
                    m->kind == VOC_MAIL_BOUNCE ? "bounce" : "auto-reply");
        finish(d, &o);
        return;
    }
    if (rc == 1)
        submit_thread_event(d);
    else
        submit_new_case(d);
}

/* A delivery the worker still held at shutdown: nobody was answered, so nothing is lost (the
 * MTA retries, the Maildir file stays in new/). */
static void discard_delivery(struct voc_worker_item *item, void *arg)
{
    (void)arg;
    struct delivery *d = (struct delivery *)item;
    d->st->jobs--;
    delivery_free(d);
}

/* The one delivery path of both inputs. `done` is called exactly once, later, on the loop
 * (or never, if the plugin is destroyed first). data stays valid until then.
 * envelope_from: "" = null sender, NULL = unknown (Maildir: from Return-Path). */
static void deliver(struct email_state *st, const char *data, size_t len, const char *envelope_from,
                    const char *const *recipients, size_t recipient_count, delivery_done done,
                    void *arg)
{
    struct outcome o;
    st->api->counter_add(st->c_received, 1);
    struct delivery *d = calloc(1, sizeof *d);
    if (!d) {
        set_outcome(&o, OUT_TEMP, 451, "4.3.0", "out of memory, try again later");
        done(arg, &o);
        return;
    }
    d->st = st;
    d->done = done;
    d->arg = arg;
    d->data = data;
    d->len = len;
    st->jobs++;
    d->envelope_from = envelope_from ? strdup(envelope_from) : NULL;
    if (recipient_count) {
        d->recipients = calloc(recipient_count, sizeof *d->recipients);
        for (size_t i = 0; d->recipients && i < recipient_count; i++)
            d->recipients[d->recipient_count++] = g_utf8_make_valid(recipients[i], -1);
    }
    const struct email_config *cfg = st->cfg;
    d->limits = (struct voc_mail_limits){
        .max_size = cfg->max_message_size,
        .max_depth = (unsigned)cfg->max_mime_depth,
        .max_parts = (unsigned)cfg->max_mime_parts,
        .max_attachments = (unsigned)cfg->attachments.max_count,
        .max_attachment_size = cfg->attachments.max_size,
        .max_text = (size_t)cfg->max_text_size,
    };
    d->charsets = g_new0(char *, cfg->charset_count + 1);
    for (size_t i = 0; i < cfg->charset_count; i++)
        d->charsets[i] = g_strdup(cfg->charsets[i]);
    voc_worker_submit(st->worker, &d->item);
}

/* ---- LMTP connections ------------------------------------------------------------------------ */

static void conn_free(struct lmtp_conn *c)
{
    struct email_state *st = c->st;
    if (c->prev)
        c->prev->next = c->next;
    else
        st->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    st->conn_count--;
    if (c->bev)
        bufferevent_free(c->bev);
    voc_lmtp_free(c->session);
    free(c);
}

static void conn_pump(struct lmtp_conn *c);

static void conn_write(void *arg, const char *bytes, size_t len)
{
    struct lmtp_conn *c = arg;
    if (c->bev && !c->dead)
        bufferevent_write(c->bev, bytes, len);
}

static void conn_close_request(void *arg)
{
    struct lmtp_conn *c = arg;
    c->closing = true;
    if (c->bev)
        bufferevent_disable(c->bev, EV_READ);
}

static void conn_delivered(void *arg, const struct outcome *o)
{
    struct lmtp_conn *c = arg;
    c->busy = false;
    if (c->dead) {
        conn_free(c);
        return;
    }
    voc_lmtp_reply(c->session, o->code, o->enhanced, o->text);
    if (c->st->stopped) {
        voc_lmtp_shutdown(c->session, "shutting down");
        return;
    }
    if (c->closing)
        return;
    bufferevent_enable(c->bev, EV_READ);
    if (!c->in_feed) /* called back later: take up the pipelined input left waiting */
        conn_pump(c);
}

static void conn_message(void *arg, const struct voc_lmtp_message *msg)
{
    struct lmtp_conn *c = arg;
    c->busy = true;
    if (c->bev)
        bufferevent_disable(c->bev, EV_READ); /* pipelined input waits in the buffer */
    deliver(c->st, msg->data, msg->len, msg->sender, msg->recipients, msg->recipient_count,
            conn_delivered, c);
}

static void conn_pump(struct lmtp_conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    c->in_feed = true;
    while (!voc_lmtp_paused(c->session) && !voc_lmtp_finished(c->session) &&
           evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        size_t used = voc_lmtp_feed(c->session, v.iov_base, v.iov_len);
        evbuffer_drain(in, used);
        if (used < v.iov_len)
            break;
    }
    c->in_feed = false;
}

static void conn_read_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    conn_pump(arg);
}

static void conn_write_cb(struct bufferevent *bev, void *arg)
{
    struct lmtp_conn *c = arg;
    if (c->closing && !c->busy && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        conn_free(c);
}

static void conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct lmtp_conn *c = arg;
    if (what & BEV_EVENT_TIMEOUT) {
        if (c->busy)
            return;
        voc_lmtp_shutdown(c->session, "idle timeout");
        bufferevent_enable(c->bev, EV_WRITE);
        return;
    }
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        if (c->busy) {
            /* the answer has nowhere to go, but the delivery finishes (and stays durable) */
            c->dead = true;
            bufferevent_free(c->bev);
            c->bev = NULL;
            return;
        }
        conn_free(c);
    }
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                      int socklen, void *arg)
{
    (void)l;
    (void)socklen;
    struct email_state *st = arg;
    struct lmtp_conn *c = calloc(1, sizeof *c);
    if (!c) {
        evutil_closesocket(fd);
        return;
    }
    c->st = st;
    if (sa->sa_family == AF_INET)
        evutil_inet_ntop(AF_INET, &((struct sockaddr_in *)sa)->sin_addr, c->peer, sizeof c->peer);
    else if (sa->sa_family == AF_INET6)
        evutil_inet_ntop(AF_INET6, &((struct sockaddr_in6 *)sa)->sin6_addr, c->peer,
                         sizeof c->peer);
    c->bev = bufferevent_socket_new(st->base, fd, BEV_OPT_CLOSE_ON_FREE);
    struct voc_lmtp_config lc = {
        .hostname = st->hostname,
        .max_size = st->cfg->max_message_size,
        .max_recipients = (unsigned)st->cfg->max_recipients,
        .max_errors = 20,
    };
    struct voc_lmtp_callbacks cb = {conn_write, conn_message, conn_close_request};
    c->session = voc_lmtp_new(&lc, &cb, c);
    if (!c->bev || !c->session) {
        if (c->bev)
            bufferevent_free(c->bev);
        else
            evutil_closesocket(fd);
        voc_lmtp_free(c->session);
        free(c);
        return;
    }
    c->next = st->conns;
    if (st->conns)
        st->conns->prev = c;
    st->conns = c;
    st->conn_count++;
    bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
    struct timeval tv = {
        (time_t)st->cfg->timeout,
        (suseconds_t)((st->cfg->timeout - (double)(time_t)st->cfg->timeout) * 1e6)};
    if (st->cfg->timeout > 0)
        bufferevent_set_timeouts(c->bev, &tv, &tv);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    if (st->conn_count > (size_t)st->cfg->max_connections) {
        st->api->log(st->p, VOC_PLOG_WARN, "LMTP connection refused, too many peer=%s", c->peer);
        voc_lmtp_shutdown(c->session, "too many connections, try again later");
        return;
    }
    voc_lmtp_greet(c->session);
}

static void on_accept_error(struct evconnlistener *l, void *arg)
{
    (void)l;
    struct email_state *st = arg;
    st->api->log(st->p, VOC_PLOG_ERROR, "LMTP accept failed: %s",
                 evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
}

/* ---- Maildir -------------------------------------------------------------------------------- */

struct maildir_job {
    struct email_state *st;
    struct voc_maildir_item *item;
};

static void maildir_delivered(void *arg, const struct outcome *o)
{
    struct maildir_job *j = arg;
    enum voc_maildir_outcome mo = o->cls == OUT_OK     ? VOC_MAILDIR_DELIVERED
                                  : o->cls == OUT_PERM ? VOC_MAILDIR_REJECTED
                                                       : VOC_MAILDIR_RETRY;
    char reason[420];
    snprintf(reason, sizeof reason, "%d %s %s", o->code, o->enhanced, o->text);
    voc_maildir_done(j->st->maildir, j->item, mo, reason);
    free(j);
}

static void maildir_deliver(void *arg, struct voc_maildir_item *item, const char *name,
                            const char *data, size_t len)
{
    (void)name;
    struct email_state *st = arg;
    struct maildir_job *j = calloc(1, sizeof *j);
    if (!j) {
        voc_maildir_done(st->maildir, item, VOC_MAILDIR_RETRY, "out of memory");
        return;
    }
    j->st = st;
    j->item = item;
    deliver(st, data, len, NULL, NULL, 0, maildir_delivered, j);
}

static void maildir_log(void *arg, int level, const char *message)
{
    struct email_state *st = arg;
    st->api->log(st->p, (enum voc_plugin_log_level)level, "%s", message);
}

/* ---- plugin ---------------------------------------------------------------------------------- */

/* "host:port" or "[v6]:port" (port 0 = any free port) into a socket address. */
static int parse_listen(const char *text, struct sockaddr_storage *ss, int *len)
{
    char host[256];
    const char *port;
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (!close || close[1] != ':' || (size_t)(close - text - 1) >= sizeof host)
            return -1;
        memcpy(host, text + 1, (size_t)(close - text - 1));
        host[close - text - 1] = '\0';
        port = close + 2;
    } else {
        const char *colon = strrchr(text, ':');
        if (!colon || (size_t)(colon - text) >= sizeof host || colon == text)
            return -1;
        memcpy(host, text, (size_t)(colon - text));
        host[colon - text] = '\0';
        port = colon + 1;
    }
    char *end;
    long p = strtol(port, &end, 10);
    if (!*port || *end || p < 0 || p > 65535)
        return -1;
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    if (getaddrinfo(host, port, &hints, &res) != 0 || !res)
        return -1;
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = (int)res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

/* Check the acknowledge section against this core and resolve its time zone. */
static int ack_settings(struct voc_plugin *p, const struct voc_core_api *api,
                        const struct ack_config *ack, GTimeZone **zone)
{
    *zone = NULL;
    if (!ack->notifier || !ack->notifier[0])
        return 0;
    if (!VOC_API_HAS(api, notify) || !VOC_API_HAS(api, case_get)) {
        api->log(p, VOC_PLOG_ERROR,
                 "plugins.email.acknowledge needs a vocd with the notify call (plugin ABI 1.1)");
        return -1;
    }
    if (ack->time_zone && ack->time_zone[0]) {
        *zone = g_time_zone_new_identifier(ack->time_zone);
        if (!*zone) {
            api->log(p, VOC_PLOG_ERROR,
                     "plugins.email.acknowledge.time_zone: unknown time zone '%s'", ack->time_zone);
            return -1;
        }
    } else {
        *zone = g_time_zone_new_local();
    }
    /* A pattern GLib cannot apply would leave {due} empty in every mail: refuse it now. */
    char *probe = voc_ack_format_time(0, *zone, ack->time_format);
    if (!probe || !probe[0]) {
        api->log(p, VOC_PLOG_ERROR,
                 "plugins.email.acknowledge.time_format: '%s' is not a g_date_time_format "
                 "pattern",
                 ack->time_format);
        g_free(probe);
        g_time_zone_unref(*zone);
        *zone = NULL;
        return -1;
    }
    g_free(probe);
    return 0;
}

static int email_init(struct voc_plugin *p, const struct voc_core_api *api, const void *config,
                      void **state)
{
    const struct email_config *cfg = config;
    if (api->size < offsetof(struct voc_core_api, data_dir) + sizeof api->data_dir) {
        api->log(p, VOC_PLOG_ERROR, "this vocd is too old for the email plugin");
        return -1;
    }
    if ((!cfg->lmtp || !cfg->lmtp[0]) && (!cfg->maildir || !cfg->maildir[0])) {
        api->log(p, VOC_PLOG_ERROR, "plugins.email needs 'lmtp' (host:port), 'maildir', or both");
        return -1;
    }
    if (cfg->lmtp && cfg->lmtp[0]) {
        struct sockaddr_storage ss;
        int len = sizeof ss;
        if (parse_listen(cfg->lmtp, &ss, &len) != 0) {
            api->log(p, VOC_PLOG_ERROR, "plugins.email.lmtp: '%s' is not host:port", cfg->lmtp);
            return -1;
        }
    }
    GTimeZone *zone = NULL;
    if (ack_settings(p, api, &cfg->acknowledge, &zone) != 0)
        return -1;
    voc_mail_library_init();
    struct email_state *st = calloc(1, sizeof *st);
    if (!st) {
        if (zone)
            g_time_zone_unref(zone);
        return -1;
    }
    st->ack_zone = zone;
    st->p = p;
    st->api = api;
    st->cfg = cfg;
    st->base = api->event_base(p);
    const char *data_dir = api->data_dir(p);
    st->attach_root = g_strdup_printf("%s/email/attachments", data_dir);
    if (voc_attach_init(st->attach_root) != 0) {
        api->log(p, VOC_PLOG_ERROR, "cannot create %s: %s", st->attach_root, strerror(errno));
        g_free(st->attach_root);
        if (st->ack_zone)
            g_time_zone_unref(st->ack_zone);
        free(st);
        return -1;
    }
    if (cfg->hostname && cfg->hostname[0]) {
        st->hostname = g_strdup(cfg->hostname);
    } else {
        char host[256] = "localhost";
        gethostname(host, sizeof host - 1);
        st->hostname = g_strdup(host);
    }
    if (voc_worker_start(st->base, work_delivery, resume_delivery, st, &st->worker) != 0) {
        api->log(p, VOC_PLOG_ERROR, "cannot start the mail worker thread");
        g_free(st->attach_root);
        g_free(st->hostname);
        if (st->ack_zone)
            g_time_zone_unref(st->ack_zone);
        free(st);
        return -1;
    }
    st->c_received = api->counter(p, "messages_received", "Messages received (LMTP and Maildir)");
    st->c_cases = api->counter(p, "cases_created", "Cases opened from e-mail");
    st->c_messages = api->counter(p, "replies_threaded", "Replies added to their case");
    st->c_auto = api->counter(p, "auto_replies", "Auto-replies and bounces (recorded or logged)");
    st->c_duplicates = api->counter(p, "duplicates", "Re-deliveries answered without a write");
    st->c_rejected = api->counter(p, "rejected", "Messages refused for good (5xx)");
    st->c_tempfail = api->counter(p, "deferred", "Messages deferred (4xx)");
    st->c_acks = api->counter(p, "acknowledgements", "Acknowledgement mails queued");
    *state = st;
    return 0;
}

static int email_start(void *state)
{
    struct email_state *st = state;
    const struct email_config *cfg = st->cfg;
    if (cfg->lmtp && cfg->lmtp[0]) {
        struct sockaddr_storage ss;
        int len = sizeof ss;
        if (parse_listen(cfg->lmtp, &ss, &len) != 0)
            return -1;
        st->listener = evconnlistener_new_bind(st->base, on_accept, st,
                                               LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
                                                   LEV_OPT_CLOSE_ON_EXEC,
                                               128, (struct sockaddr *)&ss, len);
        if (!st->listener) {
            st->api->log(st->p, VOC_PLOG_ERROR, "cannot listen on %s: %s", cfg->lmtp,
                         strerror(errno));
            return -1;
        }
        evconnlistener_set_error_cb(st->listener, on_accept_error);
        struct sockaddr_storage bound;
        socklen_t bl = sizeof bound;
        char host[64] = "?";
        unsigned port = 0;
        if (getsockname(evconnlistener_get_fd(st->listener), (struct sockaddr *)&bound, &bl) == 0) {
            if (bound.ss_family == AF_INET) {
                evutil_inet_ntop(AF_INET, &((struct sockaddr_in *)&bound)->sin_addr, host,
                                 sizeof host);
                port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
            } else if (bound.ss_family == AF_INET6) {
                evutil_inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&bound)->sin6_addr, host,
                                 sizeof host);
                port = ntohs(((struct sockaddr_in6 *)&bound)->sin6_port);
            }
        }
        st->api->log(st->p, VOC_PLOG_INFO, "listening lmtp addr=%s:%u", host, port);
    }
    if (cfg->maildir && cfg->maildir[0]) {
        struct voc_maildir_options mo = {
            .root = cfg->maildir,
            .rescan_s = cfg->maildir_rescan,
            .max_inflight = (unsigned)cfg->maildir_parallel,
            .max_size = cfg->max_message_size,
            .deliver = maildir_deliver,
            .log = maildir_log,
            .arg = st,
        };
        char err[600];
        if (voc_maildir_open(st->base, &mo, &st->maildir, err, sizeof err) != 0) {
            st->api->log(st->p, VOC_PLOG_ERROR, "%s", err);
            return -1;
        }
        st->api->log(st->p, VOC_PLOG_INFO, "watching maildir path=%s", cfg->maildir);
    }
    return 0;
}

static void email_stop(void *state)
{
    struct email_state *st = state;
    st->stopped = true;
    if (st->listener) {
        evconnlistener_free(st->listener);
        st->listener = NULL;
    }
    voc_maildir_stop(st->maildir);
    for (struct lmtp_conn *c = st->conns, *next; c; c = next) {
        next = c->next;
        if (!c->busy && !c->dead)
            voc_lmtp_shutdown(c->session, "shutting down");
    }
}

static void email_destroy(void *state)
{
    struct email_state *st = state;
    /* Normally gone with stop(); freed here too so that no path leaves a listener whose
     * callback argument is about to be freed. */
    if (st->listener) {
        evconnlistener_free(st->listener);
        st->listener = NULL;
    }
    voc_worker_stop(st->worker, discard_delivery);
    while (st->conns) {
        struct lmtp_conn *c = st->conns;
        c->busy = false;
        conn_free(c);
    }
    voc_maildir_free(st->maildir);
    g_free(st->attach_root);
    g_free(st->hostname);
    if (st->ack_zone)
        g_time_zone_unref(st->ack_zone);
    free(st);
}

/* Limits, charsets and timeouts change on SIGHUP; the listener and the Maildir stay as they
 * were started (a different address or folder needs a restart). */
static int email_reload(void *state, const void *new_config)
{
    struct email_state *st = state;
    const struct email_config *next = new_config;
    const struct email_config *old = st->cfg;
    bool same_lmtp = (!old->lmtp && !next->lmtp) ||
                     (old->lmtp && next->lmtp && strcmp(old->lmtp, next->lmtp) == 0);
    bool same_maildir = (!old->maildir && !next->maildir) ||
                        (old->maildir && next->maildir && strcmp(old->maildir, next->maildir) == 0);
    GTimeZone *zone = NULL;
    if (ack_settings(st->p, st->api, &next->acknowledge, &zone) != 0)
        return -1;
    if (!same_lmtp || !same_maildir)
        st->api->log(st->p, VOC_PLOG_WARN,
                     "lmtp and maildir changes take effect at the next restart");
    if (st->ack_zone)
        g_time_zone_unref(st->ack_zone);
    st->ack_zone = zone;
    st->cfg = next;
    return 0;
}

static const struct voc_plugin_descriptor email_descriptor = {
    .abi_version = VOC_PLUGIN_ABI_VERSION,
    .name = "email",
    .version = "1.1.0",
    .description = "E-mail channel: LMTP listener for the MTA and Maildir intake; MIME and "
                   "Chinese charsets decoded, attachments stored, replies threaded into their "
                   "case",
    .options = email_options,
    .config_size = sizeof(struct email_config),
    .init = email_init,
    .start = email_start,
    .stop = email_stop,
    .destroy = email_destroy,
    .reload = email_reload,
};

VOC_PLUGIN_EXPORT(email_descriptor);
