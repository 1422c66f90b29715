/* Small jansson helpers shared by the API, the store and the channels. */
#ifndef VOC_JSONUTIL_H
#define VOC_JSONUTIL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "apierror.h"

/* Parse a request body that must be a JSON object. Invalid UTF-8 is `invalid_utf8`, other
 * syntax errors `invalid_json` with line and column. Returns 0 or -1 with err set. */
int voc_json_parse_object(const char *buf, size_t len, json_t **out, struct voc_err *err);
/* Compact UTF-8 dump; malloc'd, NUL-terminated, *len without the NUL. */
char *voc_json_dump(const json_t *value, size_t *len);
/* Is every byte sequence valid UTF-8 (and free of NUL)? */
bool voc_utf8_valid(const char *s, size_t len);
/* Length of the longest prefix of s (len bytes, at most max) that ends on a character
 * boundary: where to cut UTF-8 text without splitting a sequence. */
size_t voc_utf8_cut(const char *s, size_t len, size_t max);
/* obj[key] as a string, or NULL. */
const char *voc_json_str(const json_t *obj, const char *key);
/* obj[key] as an integer, or def. */
long long voc_json_int(const json_t *obj, const char *key, long long def);
/* Does the array `list` hold the string `s`? (Tag lists.) */
bool voc_json_list_has(const json_t *list, const char *s);
/* Append the string `s` to the array `list` unless it holds it already. */
void voc_json_list_add(json_t *list, const char *s);

#endif
