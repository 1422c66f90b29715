#include "intake.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "jsonutil.h"
#include "textnorm.h"
#include "timeutil.h"

#define MAX_STRING (64 * 1024)
#define MAX_EXTERNAL_ID 256
#define MAX_ATTACHMENTS 1000

static const char *const customer_keys[] = {"name", "contact", "region", "account", NULL};
static const char *const product_keys[] = {"name", "model", "batch", NULL};
static const char *const attachment_keys[] = {"name", "type", "size", "sha256", NULL};

int voc_channel_name_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 32)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!(islower((unsigned char)c) || isdigit((unsigned char)c) || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

static int in_list(const char *const *list, const char *key)
{
    for (int i = 0; list[i]; i++)
        if (strcmp(list[i], key) == 0)
            return 1;
    return 0;
}

/* A string field: type, UTF-8 (jansson already guarantees it for parsed input, but plugins
 * may build records by hand), size. */
static int check_string(const json_t *v, const char *name, size_t max, struct voc_err *err)
{
    if (!json_is_string(v)) {
        voc_err_set(err, 400, "wrong_type", "field '%s' must be a string", name);
        return -1;
    }
    size_t len = json_string_length(v);
    if (!voc_utf8_valid(json_string_value(v), len)) {
        voc_err_set(err, 400, "invalid_utf8", "field '%s' is not valid UTF-8", name);
        return -1;
    }
    if (max && len > max) {
        voc_err_set(err, 400, "wrong_type", "field '%s' is longer than %zu bytes", name, max);
        return -1;
    }
    return 0;
}

/* An object of known string fields (customer, product). */
static int check_string_object(const json_t *v, const char *name, const char *const *keys,
                               struct voc_err *err)
{
    if (!json_is_object(v)) {
        voc_err_set(err, 400, "wrong_type", "field '%s' must be an object", name);
        return -1;
    }
    const char *key;
    json_t *item;
    json_object_foreach((json_t *)v, key, item)
    {
        char full[128];
        snprintf(full, sizeof full, "%s.%s", name, key);
        if (!in_list(keys, key)) {
            voc_err_set(err, 400, "unknown_field", "unknown field '%s'", full);
            return -1;
        }
        if (check_string(item, full, MAX_STRING, err) != 0)
            return -1;
    }
    return 0;
}

static int check_attachments(const json_t *v, struct voc_err *err)
{
    if (!json_is_array(v)) {
        voc_err_set(err, 400, "wrong_type", "field 'attachments' must be an array");
        return -1;
    }
    if (json_array_size(v) > MAX_ATTACHMENTS) {
        voc_err_set(err, 400, "wrong_type", "more than %d attachments", MAX_ATTACHMENTS);
        return -1;
    }
    size_t i;
    json_t *a;
    json_array_foreach(v, i, a)
    {
        char name[64];
        snprintf(name, sizeof name, "attachments[%zu]", i);
        if (!json_is_object(a)) {
            voc_err_set(err, 400, "wrong_type", "field '%s' must be an object", name);
            return -1;
        }
        const char *key;
        json_t *item;
        json_object_foreach(a, key, item)
        {
            char full[128];
            snprintf(full, sizeof full, "%s.%s", name, key);
            if (!in_list(attachment_keys, key)) {
                voc_err_set(err, 400, "unknown_field", "unknown field '%s'", full);
                return -1;
            }
            if (strcmp(key, "size") == 0) {
                if (!json_is_integer(item) || json_integer_value(item) < 0) {
                    voc_err_set(err, 400, "wrong_type", "field '%s' must be an integer >= 0",
                                full);
                    return -1;
                }
            } else if (check_string(item, full, 1024, err) != 0) {
                return -1;
            }
            if (strcmp(key, "sha256") == 0) {
                const char *h = json_string_value(item);
                int ok = strlen(h) == 64;
                for (int k = 0; ok && k < 64; k++)
                    ok = isxdigit((unsigned char)h[k]) != 0;
                if (!ok) {
                    voc_err_set(err, 400, "wrong_type", "field '%s' must be 64 hex digits", full);
                    return -1;
                }
            }
        }
    }
    return 0;
}

/* Strings nested anywhere in `fields` must be valid UTF-8 too ("never stored mangled"). */
static int check_utf8_deep(const json_t *v, int depth, struct voc_err *err)
{
    if (depth > 32) {
        voc_err_set(err, 400, "wrong_type", "field 'fields' is nested too deeply");
        return -1;
    }
    if (json_is_string(v))
        return check_string(v, "fields", 0, err);
    const char *key;
    json_t *item;
    size_t i;
    if (json_is_object(v)) {
        json_object_foreach((json_t *)v, key, item)
        {
            if (!voc_utf8_valid(key, strlen(key))) {
                voc_err_set(err, 400, "invalid_utf8", "a key in 'fields' is not valid UTF-8");
                return -1;
            }
            if (check_utf8_deep(item, depth + 1, err))
                return -1;
        }
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, item) if (check_utf8_deep(item, depth + 1, err)) return -1;
    }
    return 0;
}

static int copy_string_field(json_t *out, const json_t *in, const char *name, size_t max,
                             struct voc_err *err)
{
    json_t *v = json_object_get(in, name);
    if (!v || json_is_null(v)) {
        json_object_set_new(out, name, json_string(""));
        return 0;
    }
    if (check_string(v, name, max, err) != 0)
        return -1;
    json_object_set(out, name, v);
    return 0;
}

int voc_intake_validate(const json_t *record, const char *default_channel, int64_t now_us,
                        json_t **out, struct voc_err *err)
{
    static const char *const known[] = {"external_id", "channel", "source", "received_at",
                                        "customer",    "product", "subject", "text",
                                        "expected",    "attachments", "fields", NULL};
    if (!json_is_object(record)) {
        voc_err_set(err, 400, "wrong_type", "an intake record must be a JSON object");
        return -1;
    }
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)record, key, value)
    {
        if (!in_list(known, key)) {
            voc_err_set(err, 400, "unknown_field", "unknown field '%s'", key);
            return -1;
        }
    }
    json_t *o = json_object();
    if (!o) {
        voc_err_set(err, 500, "internal", "out of memory");
        return -1;
    }

    value = json_object_get(record, "external_id");
    if (value && !json_is_null(value)) {
        if (check_string(value, "external_id", MAX_EXTERNAL_ID, err) != 0)
            goto fail;
        if (json_string_length(value) == 0) {
            voc_err_set(err, 400, "wrong_type", "field 'external_id' must not be empty");
            goto fail;
        }
        json_object_set(o, "external_id", value);
    } else {
        json_object_set_new(o, "external_id", json_null());
    }

    value = json_object_get(record, "channel");
    if (value && !json_is_null(value)) {
        if (check_string(value, "channel", 32, err) != 0)
            goto fail;
        if (!voc_channel_name_valid(json_string_value(value))) {
            voc_err_set(err, 400, "wrong_type",
                        "field 'channel' must be 1-32 characters of a-z, 0-9, '_' or '-'");
            goto fail;
        }
        json_object_set(o, "channel", value);
    } else {
        json_object_set_new(o, "channel", json_string(default_channel ? default_channel : "api"));
    }

    value = json_object_get(record, "source");
    if (value && !json_is_null(value)) {
        const char *s = json_string_value(value);
        if (!s || (strcmp(s, "customer") && strcmp(s, "employee") && strcmp(s, "partner"))) {
            voc_err_set(err, 400, "wrong_type",
                        "field 'source' must be one of customer, employee, partner");
            goto fail;
        }
        json_object_set(o, "source", value);
    } else {
        json_object_set_new(o, "source", json_string("customer"));
    }

    int64_t received = now_us;
    value = json_object_get(record, "received_at");
    if (value && !json_is_null(value)) {
        if (!json_is_string(value) || voc_parse_time(json_string_value(value), &received) != 0) {
            voc_err_set(err, 400, "wrong_type",
                        "field 'received_at' must be an RFC 3339 time such as "
                        "2026-11-23T09:15:00+08:00");
            goto fail;
        }
        if (received < 0) {
            voc_err_set(err, 400, "wrong_type", "field 'received_at' is before 1970");
            goto fail;
        }
    }
    char when[40];
    voc_format_time(received, when, sizeof when);
    json_object_set_new(o, "received_at", json_string(when));

    value = json_object_get(record, "customer");
    if (value && !json_is_null(value)) {
        if (check_string_object(value, "customer", customer_keys, err) != 0)
            goto fail;
        json_object_set_new(o, "customer", json_deep_copy(value));
    } else {
        json_object_set_new(o, "customer", json_object());
    }
    value = json_object_get(record, "product");
    if (value && !json_is_null(value)) {
        if (check_string_object(value, "product", product_keys, err) != 0)
            goto fail;
        json_object_set_new(o, "product", json_deep_copy(value));
    } else {
        json_object_set_new(o, "product", json_object());
    }

    if (copy_string_field(o, record, "subject", MAX_STRING, err) ||
        copy_string_field(o, record, "text", 0, err) ||
        copy_string_field(o, record, "expected", MAX_STRING, err))
        goto fail;
    if (json_string_length(json_object_get(o, "subject")) == 0 &&
        json_string_length(json_object_get(o, "text")) == 0) {
        voc_err_set(err, 400, "missing_field", "'text' or 'subject' is required");
        goto fail;
    }

    value = json_object_get(record, "attachments");
    if (value && !json_is_null(value)) {
        if (check_attachments(value, err) != 0)
            goto fail;
        json_object_set_new(o, "attachments", json_deep_copy(value));
    } else {
        json_object_set_new(o, "attachments", json_array());
    }

    value = json_object_get(record, "fields");
    if (value && !json_is_null(value)) {
        if (!json_is_object(value)) {
            voc_err_set(err, 400, "wrong_type", "field 'fields' must be an object");
            goto fail;
        }
        if (check_utf8_deep(value, 0, err) != 0)
            goto fail;
        json_object_set_new(o, "fields", json_deep_copy(value));
    } else {
        json_object_set_new(o, "fields", json_object());
    }
    *out = o;
    return 0;
fail:
    json_decref(o);
    return -1;
}

int voc_intake_add_normalized(json_t *intake, struct voc_textnorm *tn)
{
    const char *subject = voc_json_str(intake, "subject");
    const char *text = voc_json_str(intake, "text");
    size_t slen = subject ? strlen(subject) : 0, tlen = text ? strlen(text) : 0;
    char *joined = malloc(slen + tlen + 2);
    if (!joined)
        return -1;
    memcpy(joined, subject ? subject : "", slen);
    joined[slen] = '\n';
    memcpy(joined + slen + 1, text ? text : "", tlen);
    joined[slen + 1 + tlen] = '\0';
    char *norm = NULL;
    size_t norm_len = 0;
    int rc = voc_normalize(tn, joined, slen + 1 + tlen, &norm, &norm_len);
    free(joined);
    if (rc != VOC_NORM_OK)
        return -1;
    json_object_set_new(intake, "normalized", json_stringn(norm, norm_len));
    free(norm);
    return 0;
}
