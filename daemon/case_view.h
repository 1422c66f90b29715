/* How a stored case is shown: to API clients, to Lua hooks, in lists. */
#ifndef VOC_CASE_VIEW_H
#define VOC_CASE_VIEW_H

#include <jansson.h>
#include <stdint.h>

/* The full case as GET /api/v1/cases/{id} returns it (docs/api.md): the record without its
 * internal fields, its clocks as the API shows them (at `now_us`), and the events
 * (borrowed; NULL = empty array). New reference. */
json_t *voc_case_view(const json_t *record, const json_t *events, int64_t now_us);
/* One line of GET /api/v1/cases. New reference. */
json_t *voc_case_summary(const json_t *record);
/* Mask customer.contact in place for the viewer role: phone 138****5678, e-mail
 * z***@example.com, anything else first character + ***. */
void voc_case_mask_contact(json_t *view);
/* The masked form of one contact string (malloc'd). */
char *voc_mask_contact(const char *contact);

#endif
