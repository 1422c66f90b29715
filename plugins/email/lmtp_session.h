/* The server side of one LMTP connection (RFC 2033) as a pure state machine: bytes in
 * (voc_lmtp_feed), replies out (the write callback). No sockets here, so the protocol is
 * unit-tested by feeding strings; the plugin glue connects it to a bufferevent.
 *
 * Advertised: PIPELINING, ENHANCEDSTATUSCODES, 8BITMIME, SMTPUTF8, SIZE. After the message
 * data of a transaction the session calls `message` and pauses (consumes no more input)
 * until voc_lmtp_reply() gives the outcome, which is then sent once per accepted recipient,
 * as LMTP requires. The reply may be given from inside the callback or any time later. */
#ifndef VOC_LMTP_SESSION_H
#define VOC_LMTP_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct voc_lmtp_session;

struct voc_lmtp_message {
    const char *helo;        /* the LHLO argument */
    const char *sender;      /* reverse path without <>; "" = null sender */
    const char *const *recipients;
    size_t recipient_count;
    const char *data;        /* message, dot-unstuffed, CRLF line ends, final CRLF kept */
    size_t len;              /* valid until voc_lmtp_reply() */
};

struct voc_lmtp_callbacks {
    void (*write)(void *arg, const char *bytes, size_t len);
    void (*message)(void *arg, const struct voc_lmtp_message *msg);
    /* The session is done (QUIT, too many errors): close after the output is flushed. */
    void (*close)(void *arg);
};

struct voc_lmtp_config {
    const char *hostname;   /* in the greeting and LHLO reply */
    uint64_t max_size;      /* message size limit (SIZE); 0 = none */
    unsigned max_recipients;
    unsigned max_errors;    /* bad commands before 421 and close */
};

struct voc_lmtp_session *voc_lmtp_new(const struct voc_lmtp_config *cfg,
                                      const struct voc_lmtp_callbacks *cb, void *arg);
void voc_lmtp_free(struct voc_lmtp_session *s);

/* Send the 220 greeting. */
void voc_lmtp_greet(struct voc_lmtp_session *s);

/* Consume input. Returns how many bytes were taken: all of them, unless the session paused
 * for a message outcome or finished; the caller keeps the rest and feeds it again after
 * voc_lmtp_reply(). */
size_t voc_lmtp_feed(struct voc_lmtp_session *s, const char *data, size_t len);

/* Waiting for voc_lmtp_reply()? */
bool voc_lmtp_paused(const struct voc_lmtp_session *s);
/* After QUIT or a fatal error: nothing more is read. */
bool voc_lmtp_finished(const struct voc_lmtp_session *s);

/* The outcome of the message handed to `message`: code (250, 451, 452, 552, 554 ...),
 * enhanced status ("2.0.0") and text (one line, ASCII). Sent once per recipient; the
 * transaction is reset and input processing may resume. */
void voc_lmtp_reply(struct voc_lmtp_session *s, int code, const char *enhanced,
                    const char *text);

/* Say 421 with text and finish (idle timeout, shutdown). */
void voc_lmtp_shutdown(struct voc_lmtp_session *s, const char *text);

#endif
