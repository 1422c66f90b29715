/* The pure parts of notification delivery (notify.c): the JSON payload, its signature, the
 * retry schedule, and the e-mail message. No I/O and no state, so the unit tests check them
 * byte for byte (tests/unit/test_notify_format.c). */
#ifndef VOC_NOTIFY_FORMAT_H
#define VOC_NOTIFY_FORMAT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* "sha256=" + 64 hex digits + NUL */
#define VOC_NOTIFY_SIG_LEN 72
/* Retries start at this delay and double up to the cap. */
#define VOC_NOTIFY_BACKOFF_FIRST_US INT64_C(1000000)
#define VOC_NOTIFY_BACKOFF_CAP_US INT64_C(300000000)

/* The X-Voc-Signature value: "sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>", the
 * scheme the webhook channel checks on the way in (plugins/webhook/signature.h), so an
 * integrator verifies both directions with the same code. Returns 0 or -1. */
int voc_notify_sign(const char *secret, size_t secret_len, const char *timestamp, const void *body,
                    size_t body_len, char out[VOC_NOTIFY_SIG_LEN]);

/* Delay before the next attempt after `failures` failed ones (>= 1): 1 s, 2 s, 4 s ... capped
 * at 5 min, then spread by +-20 % with `jitter` in [0, 1) so that notifications that failed
 * together (a receiver outage) do not all come back in the same second. */
int64_t voc_notify_backoff_us(unsigned failures, double jitter);

/* The body of one delivery attempt:
 * {"id", "notifier", "message", "created_at", "attempt", "case", "event"}.
 * `entry` is the outbox record, `summary` the case as GET /api/v1/cases lists it (NULL: the
 * case is gone -> null), `event` the event that raised it (NULL -> null). New reference. */
json_t *voc_notify_payload(const json_t *entry, const json_t *summary, const json_t *event,
                           unsigned attempt);

/* "[VOC-<case_id>] <first line of message>", the line cut at a UTF-8 boundary so the
 * subject stays readable; the tag is what the e-mail channel threads replies by. malloc'd. */
char *voc_notify_subject(uint64_t case_id, const char *message);

/* `Name: value` as a header line (CRLF included). Printable ASCII stays as is; anything else
 * becomes RFC 2047 B-encoded words of at most 75 characters, never splitting a UTF-8
 * character, folded onto continuation lines. malloc'd. */
char *voc_mime_header(const char *name, const char *value);

/* RFC 5322 date ("Tue, 03 Nov 2026 01:15:00 +0000") into buf (at least 40 bytes). */
void voc_mime_date(int64_t us, char *buf, size_t len);

/* The plain-text body of a notification mail, from a payload built above. malloc'd. */
char *voc_notify_email_text(const json_t *payload);

struct voc_notify_mail {
    const char *from;      /* address, or "Name <address>" */
    const char *const *to; /* the same forms */
    size_t to_count;
    const char *subject;     /* UTF-8 */
    const char *text;        /* UTF-8 body */
    const char *message_id;  /* without the angle brackets */
    const char *in_reply_to; /* the answered message's id (voc_mail_message_id_ok) or NULL */
    int64_t date_us;
    uint64_t case_id;
    uint64_t notification_id;
};

/* The whole message with CRLF line ends: headers (From, To, Subject, Date, Message-ID,
 * MIME-Version, Content-Type text/plain; charset=UTF-8, base64 transfer encoding,
 * Auto-Submitted so that vacation replies and our own e-mail channel do not answer it), a
 * blank line and the base64 body. malloc'd; *len without the NUL. */
char *voc_notify_mail_build(const struct voc_notify_mail *m, size_t *len);

/* Recipients a notification queued by a plugin may name (its own `to`). */
#define VOC_NOTIFY_MAX_ENTRY_RECIPIENTS 50
/* Longest Message-ID put into In-Reply-To (RFC 5322 lines stay under 998). */
#define VOC_MAIL_MAX_MESSAGE_ID 900
/* Can `id` go between angle brackets in In-Reply-To / References: non-empty, printable
 * ASCII without spaces or <>, at most VOC_MAIL_MAX_MESSAGE_ID bytes? */
bool voc_mail_message_id_ok(const char *id);

/* The bare address of "Name <addr>" or "addr", as "<addr>" for MAIL FROM / RCPT TO.
 * malloc'd, NULL when there is no address. */
char *voc_mail_angle_addr(const char *text);

#endif
