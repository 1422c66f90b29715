/* One e-mail message, raw bytes in, the parts vocd needs out (GMime 3): decoded subject and
 * sender, threading headers, whether it is an auto-reply or a bounce, the best readable text
 * and the attachments. Pure: no I/O, no core calls, so unit tests feed it fixture files. */
#ifndef VOC_MIME_PARSE_H
#define VOC_MIME_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum voc_mail_kind {
    VOC_MAIL_NORMAL,     /* written by a person */
    VOC_MAIL_AUTO_REPLY, /* Auto-Submitted, Precedence: bulk, vacation, read receipt ... */
    VOC_MAIL_BOUNCE,     /* delivery status notification */
};

enum voc_mail_status {
    VOC_MAIL_OK = 0,
    VOC_MAIL_MALFORMED,   /* not a readable message: no headers, broken MIME structure */
    VOC_MAIL_TOO_COMPLEX, /* over the depth or part limits */
    VOC_MAIL_TOO_LARGE,   /* over a size limit (message, attachment) */
    VOC_MAIL_TOO_MANY,    /* too many attachments */
    VOC_MAIL_NOMEM,
};

struct voc_mail_limits {
    uint64_t max_size;            /* whole message; 0 = no limit */
    unsigned max_depth;           /* MIME nesting (top-level part = 1) */
    unsigned max_parts;           /* MIME objects in all, containers included */
    unsigned max_attachments;
    uint64_t max_attachment_size; /* decoded bytes of one attachment */
    size_t max_text;              /* bytes of body text kept (cut beyond) */
    const char *const *fallback_charsets; /* NULL-terminated; NULL = UTF-8, GB18030 */
};

struct voc_mail_attachment {
    char *name; /* decoded file name (RFC 2231 / RFC 2047), or a made-up one */
    char *type; /* "image/jpeg" */
    unsigned char *data; /* decoded content */
    size_t size;
    bool inline_part;    /* shown in the body (Content-Disposition: inline / Content-ID) */
};

struct voc_mail {
    char *subject;      /* decoded, UTF-8, never NULL */
    char *from_name;    /* decoded display name, "" when none */
    char *from_addr;    /* "" when none */
    char *to;           /* decoded address lists as text, "" when none */
    char *cc;
    char *date;         /* the Date header as written, "" when none */
    char *message_id;   /* without <>, NULL when none */
    char **references;  /* In-Reply-To ids first, then References newest first; no <> */
    size_t reference_count;

    enum voc_mail_kind kind;
    char *kind_reason;       /* the header that decided it, e.g. "Auto-Submitted: auto-replied" */
    char *original_message_id; /* bounces: the Message-ID of the returned message */
    char *original_subject;    /* bounces: its subject */

    char *text;           /* best readable body text, UTF-8, never NULL */
    size_t text_len;
    bool text_from_html;  /* the only body was HTML */
    bool text_truncated;  /* cut at limits.max_text */
    bool text_lossy;      /* undecodable bytes were replaced by U+FFFD */

    struct voc_mail_attachment *attachments;
    size_t attachment_count;
    unsigned part_count;
    unsigned depth;
};

/* Parse `len` bytes of RFC 5322 message. `envelope_from` is the SMTP/LMTP reverse path
 * ("" = the null sender <>, NULL = unknown); a null sender marks auto-generated mail.
 * Attachments are decoded only for NORMAL mail. Returns VOC_MAIL_OK and *out, or a status
 * with a one-line reason in err (fit for an SMTP reply). Bounded in time and memory by the
 * limits: over-deep or over-wide structures are refused, never followed. */
enum voc_mail_status voc_mail_parse(const char *data, size_t len,
                                    const struct voc_mail_limits *limits,
                                    const char *envelope_from, struct voc_mail **out,
                                    char *err, size_t errlen);

void voc_mail_free(struct voc_mail *m);

/* Set up GMime once per process (idempotent). */
void voc_mail_library_init(void);

/* Count header lines that start a Content-Type field ("Content-Type:", any case): an upper
 * bound of the MIME objects in the message, found without parsing it. */
unsigned voc_mail_count_content_types(const char *data, size_t len, unsigned stop_after);

#endif
