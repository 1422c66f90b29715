/* From a webhook body to an intake record (CONTRACT.md "Cases and events").
 *
 * Without a map the body is an intake record already. With one, each intake field is taken
 * from the payload by a JSON pointer (RFC 6901, "~0" = '~', "~1" = '/'); parts of the payload
 * that no entry names are not kept — map "fields.payload" to "" (the whole document) to keep
 * all of it. Either way the record's channel defaults to the source's name and the
 * Idempotency-Key header becomes its external_id when it has none.
 * Pure functions (jansson only), so the unit tests link them directly. */
#ifndef VOC_WEBHOOK_MAPPING_H
#define VOC_WEBHOOK_MAPPING_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <vocd/plugin.h>

/* Why a body was refused: an API error code (docs/api.md) and a message; always a 400. */
struct voc_webhook_error {
    const char *code;
    char message[512];
};

/* Is `ptr` a syntactically valid JSON pointer ("" or "/..." with only ~0 and ~1 escapes)? */
bool voc_json_pointer_valid(const char *ptr);
/* The value `ptr` points at in `doc` (borrowed), or NULL when there is none (or the pointer is
 * invalid). Array indexes are "0" or digits without a leading zero; "-" points nowhere. */
json_t *voc_json_pointer_get(const json_t *doc, const char *ptr);

/* Parse a body: JSON (duplicate keys refused), valid UTF-8; an object unless any_value. */
int voc_webhook_parse_body(const char *buf, size_t len, bool any_value, json_t **out,
                           struct voc_webhook_error *err);

struct voc_webhook_map;

/* Compile `map` entries (target field -> pointer) from config. Targets: external_id, channel,
 * source, received_at, subject, text, expected, customer.{name,contact,region,account},
 * product.{name,model,batch}, attachments, fields, fields.<name>. Returns 0, or -1 with a
 * message in errbuf. */
int voc_webhook_map_compile(const struct voc_kv *entries, size_t count,
                            struct voc_webhook_map **out, char *errbuf, size_t errlen);
void voc_webhook_map_free(struct voc_webhook_map *map);

/* Build an intake record from a payload. String targets take strings, and integers as their
 * decimal text (ids often are numbers); received_at also takes an integer (Unix seconds);
 * attachments an array, fields an object, fields.<name> anything. null or absent values
 * leave the field out. Returns 0 with *out (new reference) or -1 with err. */
int voc_webhook_map_apply(const struct voc_webhook_map *map, const json_t *payload,
                          json_t **out, struct voc_webhook_error *err);

/* Defaults every record gets: channel = `channel` when the record has none, and
 * external_id = the Idempotency-Key header (may be NULL) when it has none. Returns 0 or -1. */
int voc_webhook_record_finish(json_t *record, const char *channel, const char *idempotency_key,
                              struct voc_webhook_error *err);

#endif
