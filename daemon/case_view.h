/* How a stored case is shown: to API clients, to Lua hooks, in lists. */
#ifndef VOC_CASE_VIEW_H
#define VOC_CASE_VIEW_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* The full case as GET /api/v1/cases/{id} returns it (docs/api.md): the record without its
 * internal fields, its clocks as the API shows them (at `now_us`), and the events
 * (borrowed; NULL = empty array). New reference. */
json_t *voc_case_view(const json_t *record, const json_t *events, int64_t now_us);
/* One line of GET /api/v1/cases. New reference. */
json_t *voc_case_summary(const json_t *record);
/* Mask customer.contact in place: phone 138****5678, e-mail z***@example.com, anything
 * else first character + ***. */
void voc_case_mask_contact(json_t *view);
/* Everything the viewer role must not see of a case view, masked in place:
 * customer.contact, and in `fields` and every event's `data` (channels put sender and
 * recipient addresses there: the e-mail plugin's fields.from/to/cc/envelope_from/
 * recipients and message events' data.from), at any depth:
 *  - the value of a contact-like key (from, to, cc, bcc, reply_to, sender, envelope_from,
 *    recipients, contact, email, phone, mobile, tel, ...; any case), string by string:
 *    the e-mail addresses in it masked, or the whole string when it holds none; a number
 *    there becomes a masked string;
 *  - any other string: every e-mail address in it masked, and the whole string when it
 *    is a phone number (7 to 15 digits with + - ( ) . and spaces only, not a date).
 * Digit runs inside longer text (order numbers, dates, batches) are left alone. */
void voc_case_mask_for_viewer(json_t *view);
/* The masked form of one contact string (malloc'd). */
char *voc_mask_contact(const char *contact);
/* `text` with every e-mail address in it masked like voc_mask_contact does (malloc'd);
 * *found tells whether there was one. */
char *voc_mask_emails(const char *text, bool *found);
/* Does the whole string look like a phone number (see voc_case_mask_for_viewer)? */
bool voc_looks_like_phone(const char *text);

#endif
