/* The acknowledgement mail to a customer whose message opened a case (docs/email.md,
 * "Acknowledgement mail"): which deadline it promises, and its text from the configured
 * templates. Pure — no I/O, no core calls — so the unit tests check it directly. */
#ifndef VOC_EMAIL_ACK_H
#define VOC_EMAIL_ACK_H

#include <glib.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* The due time the case promises: the running clock named `clock`, or with clock NULL the
 * first running clock (profile order) that has a due time. A clock runs while its status is
 * running or warning. Returns true and *due (Unix microseconds), or false when no such clock
 * has a due time. `case_view` is the case as GET /api/v1/cases/{id} shows it. */
bool voc_ack_due(const json_t *case_view, const char *clock, int64_t *due);

/* `due` in time zone tz with a g_date_time_format() pattern. g_free'd; NULL when the
 * pattern cannot be applied. */
char *voc_ack_format_time(int64_t due, GTimeZone *tz, const char *format);

struct voc_ack_values {
    uint64_t case_id;
    const char *subject; /* the customer's subject */
    const char *name;    /* the sender's display name ("" when none) */
    const char *due;     /* formatted deadline, NULL when none */
};

/* The template with {case}, {subject}, {name} and {due} replaced (anything else in braces
 * stays as written). g_free'd. */
char *voc_ack_render(const char *template_text, const struct voc_ack_values *v);

/* Is this sender address fit to receive a mail: one '@', printable ASCII, no spaces, no
 * angle brackets? (The address comes from a header anyone can write.) */
bool voc_ack_address_ok(const char *addr);

/* Is this Message-ID fit for In-Reply-To: printable ASCII, no spaces, no <>, <= 900 bytes? */
bool voc_ack_message_id_ok(const char *id);

#endif
