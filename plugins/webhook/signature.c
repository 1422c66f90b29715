#include "signature.h"

#include <ctype.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SIG_PREFIX "sha256="

struct voc_webhook_key {
    EVP_MAC_CTX *ctx; /* initialised with the secret; re-initialised per message */
};

int voc_webhook_key_new(const void *secret, size_t secret_len, struct voc_webhook_key **out)
{
    struct voc_webhook_key *key = calloc(1, sizeof *key);
    EVP_MAC *hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                           OSSL_PARAM_construct_end()};
    /* OpenSSL reads a NULL key as "keep the previous key": never hand it one. */
    static const unsigned char empty_key[1];
    if (!key || !hmac)
        goto fail;
    key->ctx = EVP_MAC_CTX_new(hmac);
    if (!key->ctx || !EVP_MAC_init(key->ctx, secret_len ? secret : empty_key, secret_len, params))
        goto fail;
    EVP_MAC_free(hmac); /* the context keeps its own reference */
    *out = key;
    return 0;
fail:
    EVP_MAC_free(hmac);
    voc_webhook_key_free(key);
    return -1;
}

void voc_webhook_key_free(struct voc_webhook_key *key)
{
    if (!key)
        return;
    EVP_MAC_CTX_free(key->ctx);
    free(key);
}

int voc_webhook_sign(struct voc_webhook_key *key, const char *timestamp, const void *body,
                     size_t body_len, unsigned char mac[VOC_WEBHOOK_MAC_LEN])
{
    size_t out_len = 0;
    /* NULL key and parameters: start a new message with the key set in voc_webhook_key_new. */
    if (!EVP_MAC_init(key->ctx, NULL, 0, NULL) ||
        !EVP_MAC_update(key->ctx, (const unsigned char *)timestamp, strlen(timestamp)) ||
        !EVP_MAC_update(key->ctx, (const unsigned char *)".", 1) ||
        (body_len && !EVP_MAC_update(key->ctx, body, body_len)) ||
        !EVP_MAC_final(key->ctx, mac, &out_len, VOC_WEBHOOK_MAC_LEN) ||
        out_len != VOC_WEBHOOK_MAC_LEN)
        return -1;
    return 0;
}

void voc_webhook_hex(const unsigned char mac[VOC_WEBHOOK_MAC_LEN],
                     char hex[2 * VOC_WEBHOOK_MAC_LEN + 1])
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < VOC_WEBHOOK_MAC_LEN; i++) {
        hex[2 * i] = digits[mac[i] >> 4];
        hex[2 * i + 1] = digits[mac[i] & 0xf];
    }
    hex[2 * VOC_WEBHOOK_MAC_LEN] = '\0';
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* "sha256=<64 hex>" (blanks around it tolerated) -> 32 bytes. */
static int parse_signature(const char *text, unsigned char mac[VOC_WEBHOOK_MAC_LEN])
{
    while (*text == ' ' || *text == '\t')
        text++;
    if (strncasecmp(text, SIG_PREFIX, strlen(SIG_PREFIX)) != 0)
        return -1;
    text += strlen(SIG_PREFIX);
    for (size_t i = 0; i < VOC_WEBHOOK_MAC_LEN; i++) {
        int hi = hex_value(text[2 * i]);
        int lo = hi < 0 ? -1 : hex_value(text[2 * i + 1]);
        if (lo < 0)
            return -1;
        mac[i] = (unsigned char)(hi << 4 | lo);
    }
    text += 2 * VOC_WEBHOOK_MAC_LEN;
    while (*text == ' ' || *text == '\t')
        text++;
    return *text ? -1 : 0;
}

int voc_webhook_parse_timestamp(const char *text, int64_t *out)
{
    while (*text == ' ' || *text == '\t')
        text++;
    int64_t value = 0;
    size_t digits = 0;
    /* 15 digits is far beyond any clock, and cannot overflow. */
    for (; isdigit((unsigned char)*text); text++) {
        if (++digits > 15)
            return -1;
        value = value * 10 + (*text - '0');
    }
    while (*text == ' ' || *text == '\t')
        text++;
    if (digits == 0 || *text)
        return -1;
    *out = value;
    return 0;
}

enum voc_webhook_sig_status voc_webhook_verify(struct voc_webhook_key *key,
                                               const char *signature_header,
                                               const char *timestamp_header, const void *body,
                                               size_t body_len, int64_t now_s, int64_t window_s,
                                               int64_t *skew_s)
{
    unsigned char given[VOC_WEBHOOK_MAC_LEN], expected[VOC_WEBHOOK_MAC_LEN];
    if (!signature_header)
        return VOC_WEBHOOK_SIG_MISSING;
    if (parse_signature(signature_header, given) != 0)
        return VOC_WEBHOOK_SIG_MALFORMED;
    if (!timestamp_header)
        return VOC_WEBHOOK_TS_MISSING;
    int64_t ts;
    if (voc_webhook_parse_timestamp(timestamp_header, &ts) != 0)
        return VOC_WEBHOOK_TS_MALFORMED;
    if (skew_s)
        *skew_s = ts - now_s;
    if (ts > now_s + window_s || ts < now_s - window_s)
        return VOC_WEBHOOK_TS_EXPIRED;
    /* MAC over the header's text exactly as sent, trimmed: the sender signed those digits. */
    char ts_text[32];
    const char *start = timestamp_header;
    while (*start == ' ' || *start == '\t')
        start++;
    size_t n = 0;
    while (isdigit((unsigned char)start[n]) && n < sizeof ts_text - 1) {
        ts_text[n] = start[n];
        n++;
    }
    ts_text[n] = '\0';
    if (voc_webhook_sign(key, ts_text, body, body_len, expected) != 0)
        return VOC_WEBHOOK_SIG_ERROR;
    return CRYPTO_memcmp(given, expected, VOC_WEBHOOK_MAC_LEN) == 0 ? VOC_WEBHOOK_SIG_OK
                                                                    : VOC_WEBHOOK_SIG_MISMATCH;
}

const char *voc_webhook_sig_reason(enum voc_webhook_sig_status status)
{
    switch (status) {
    case VOC_WEBHOOK_SIG_OK:
        return "signature valid";
    case VOC_WEBHOOK_SIG_MISSING:
        return "X-Voc-Signature is required: sha256=<hex HMAC-SHA256 of \"<X-Voc-Timestamp>."
               "<body>\" keyed with the source's secret>";
    case VOC_WEBHOOK_SIG_MALFORMED:
        return "X-Voc-Signature must be sha256= followed by 64 hex digits";
    case VOC_WEBHOOK_SIG_MISMATCH:
        return "X-Voc-Signature does not match: sign \"<X-Voc-Timestamp>.<raw body>\" with "
               "HMAC-SHA256 and the source's secret";
    case VOC_WEBHOOK_TS_MISSING:
        return "X-Voc-Timestamp is required (Unix seconds, also covered by the signature)";
    case VOC_WEBHOOK_TS_MALFORMED:
        return "X-Voc-Timestamp must be Unix seconds (decimal digits)";
    case VOC_WEBHOOK_TS_EXPIRED:
        return "X-Voc-Timestamp is outside the accepted window around the server's clock";
    case VOC_WEBHOOK_SIG_ERROR:
        return "the signature could not be checked";
    }
    return "bad signature";
}

const char *voc_webhook_sig_code(enum voc_webhook_sig_status status)
{
    switch (status) {
    case VOC_WEBHOOK_SIG_OK:
        return "ok";
    case VOC_WEBHOOK_SIG_MISSING:
        return "missing_signature";
    case VOC_WEBHOOK_SIG_MALFORMED:
        return "malformed_signature";
    case VOC_WEBHOOK_SIG_MISMATCH:
        return "bad_signature";
    case VOC_WEBHOOK_TS_MISSING:
        return "missing_timestamp";
    case VOC_WEBHOOK_TS_MALFORMED:
        return "malformed_timestamp";
    case VOC_WEBHOOK_TS_EXPIRED:
        return "timestamp_outside_window";
    case VOC_WEBHOOK_SIG_ERROR:
        return "crypto_error";
    }
    return "unknown";
}
