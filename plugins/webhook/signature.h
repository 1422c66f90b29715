/* Request signing for the webhook channel.
 *
 * A sender proves it knows a source's secret with two headers:
 *   X-Voc-Timestamp: <Unix seconds>
 *   X-Voc-Signature: sha256=<hex of HMAC-SHA256(secret, "<timestamp>.<raw body>")>
 * The timestamp is inside the MAC so a captured request cannot be replayed later with a
 * fresh timestamp; the receiver refuses timestamps outside a window around its clock.
 * Pure functions (no plugin state), so the unit tests link them directly. */
#ifndef VOC_WEBHOOK_SIGNATURE_H
#define VOC_WEBHOOK_SIGNATURE_H

#include <stddef.h>
#include <stdint.h>

#define VOC_WEBHOOK_MAC_LEN 32

enum voc_webhook_sig_status {
    VOC_WEBHOOK_SIG_OK = 0,
    VOC_WEBHOOK_SIG_MISSING,   /* no X-Voc-Signature header */
    VOC_WEBHOOK_SIG_MALFORMED, /* not "sha256=" followed by 64 hex digits */
    VOC_WEBHOOK_SIG_MISMATCH,  /* well-formed, wrong MAC */
    VOC_WEBHOOK_TS_MISSING,    /* no X-Voc-Timestamp header */
    VOC_WEBHOOK_TS_MALFORMED,  /* not decimal Unix seconds */
    VOC_WEBHOOK_TS_EXPIRED,    /* outside the window around now */
    VOC_WEBHOOK_SIG_ERROR,     /* the crypto library failed */
};

/* A secret made ready for signing: the keyed HMAC state is computed once (per source, at
 * config time) instead of for every request. Not for concurrent use from several threads. */
struct voc_webhook_key;

int voc_webhook_key_new(const void *secret, size_t secret_len, struct voc_webhook_key **out);
void voc_webhook_key_free(struct voc_webhook_key *key);

/* mac = HMAC-SHA256(key, timestamp "." body). Returns 0 or -1. */
int voc_webhook_sign(struct voc_webhook_key *key, const char *timestamp, const void *body,
                     size_t body_len, unsigned char mac[VOC_WEBHOOK_MAC_LEN]);

/* Lower-case hex of a MAC into hex[2 * VOC_WEBHOOK_MAC_LEN + 1]. */
void voc_webhook_hex(const unsigned char mac[VOC_WEBHOOK_MAC_LEN],
                     char hex[2 * VOC_WEBHOOK_MAC_LEN + 1]);

/* Decimal Unix seconds, surrounding blanks allowed, no sign. Returns 0 or -1. */
int voc_webhook_parse_timestamp(const char *text, int64_t *out);

/* Check both headers (either may be NULL = absent) against `key` and `body`. The
 * timestamp must be within window_s seconds of now_s, in either direction; *skew_s (may be
 * NULL) receives timestamp - now when the timestamp parsed. The MAC comparison takes the
 * same time wherever the first differing byte is. */
enum voc_webhook_sig_status voc_webhook_verify(struct voc_webhook_key *key,
                                               const char *signature_header,
                                               const char *timestamp_header, const void *body,
                                               size_t body_len, int64_t now_s, int64_t window_s,
                                               int64_t *skew_s);

/* A sentence for the 401 reply. */
const char *voc_webhook_sig_reason(enum voc_webhook_sig_status status);
/* A short word for the log ("bad_signature", "timestamp_outside_window" ...). */
const char *voc_webhook_sig_code(enum voc_webhook_sig_status status);

#endif
