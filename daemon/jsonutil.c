#include "jsonutil.h"

#include <string.h>

int voc_json_parse_object(const char *buf, size_t len, json_t **out, struct voc_err *err)
{
    json_error_t jerr;
    /* Duplicate keys would make "which value counts?" ambiguous: refuse them. */
    json_t *value = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!value) {
        if (json_error_code(&jerr) == json_error_invalid_utf8)
            voc_err_set(err, 400, "invalid_utf8", "body is not valid UTF-8 (byte %d)",
                        jerr.position);
        else if (len == 0)
            voc_err_set(err, 400, "invalid_json", "empty body: a JSON object is required");
        else
            voc_err_set(err, 400, "invalid_json", "invalid JSON at line %d column %d: %s",
                        jerr.line, jerr.column, jerr.text);
        return -1;
    }
    if (!json_is_object(value)) {
        json_decref(value);
        voc_err_set(err, 400, "wrong_type", "body must be a JSON object");
        return -1;
    }
    *out = value;
    return 0;
}

char *voc_json_dump(const json_t *value, size_t *len)
{
    char *text = json_dumps(value, JSON_COMPACT);
    if (text && len)
        *len = strlen(text);
    return text;
}

bool voc_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    while (p < end) {
        unsigned c = *p;
        if (c == 0)
            return false;
        if (c < 0x80) {
            p++;
            continue;
        }
        int n;
        unsigned min;
        unsigned cp;
        if ((c & 0xe0) == 0xc0) {
            n = 1;
            min = 0x80;
            cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            n = 2;
            min = 0x800;
            cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            n = 3;
            min = 0x10000;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (end - p <= n)
            return false;
        for (int i = 1; i <= n; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        p += n + 1;
    }
    return true;
}

size_t voc_utf8_cut(const char *s, size_t len, size_t max)
{
    if (len <= max)
        return len;
    size_t n = max;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    return n;
}

const char *voc_json_str(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

long long voc_json_int(const json_t *obj, const char *key, long long def)
{
    json_t *v = json_object_get(obj, key);
    return json_is_integer(v) ? json_integer_value(v) : def;
}

bool voc_json_list_has(const json_t *list, const char *s)
{
    size_t i;
    json_t *item;
    json_array_foreach ((json_t *)list, i, item)
        if (json_is_string(item) && strcmp(json_string_value(item), s) == 0)
            return true;
    return false;
}

void voc_json_list_add(json_t *list, const char *s)
{
    if (json_is_array(list) && !voc_json_list_has(list, s))
        json_array_append_new(list, json_string(s));
}
