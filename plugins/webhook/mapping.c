#include "mapping.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_EXTERNAL_ID 256

enum target_kind {
    T_STRING, /* a string; integers become their decimal text */
    T_TIME,   /* received_at: RFC 3339 string, or integer Unix seconds */
    T_ARRAY,  /* attachments */
    T_FIELDS, /* fields: an object merged into fields */
    T_ANY,    /* fields.<name>: any JSON value */
};

struct entry {
    enum target_kind kind;
    char *target;  /* as written in config, for messages */
    char *group;   /* NULL (top level), "customer", "product" or "fields" */
    char *key;     /* the field inside group (or at top level) */
    char *pointer; /* RFC 6901 */
};

struct voc_webhook_map {
    struct entry *entries; /* the whole-`fields` entry first, so fields.<name> can refine it */
    size_t count;
    const char *text_pointer, *subject_pointer; /* for the "neither text nor subject" message */
};

static void set_err(struct voc_webhook_error *err, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(struct voc_webhook_error *err, const char *code, const char *fmt, ...)
{
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
}

/* ---- JSON pointer (RFC 6901) ------------------------------------------------------------- */

bool voc_json_pointer_valid(const char *ptr)
{
    if (!ptr)
        return false;
    if (ptr[0] == '\0')
        return true;
    if (ptr[0] != '/')
        return false;
    for (const char *c = ptr; *c; c++)
        if (*c == '~' && c[1] != '0' && c[1] != '1')
            return false;
    return true;
}

/* Decode one reference token [start, end) into buf (at most end - start bytes). */
static size_t decode_token(const char *start, const char *end, char *buf)
{
    size_t n = 0;
    for (const char *c = start; c < end; c++) {
        if (*c == '~' && c + 1 < end && (c[1] == '0' || c[1] == '1')) {
            buf[n++] = c[1] == '0' ? '~' : '/';
            c++;
        } else {
            buf[n++] = *c;
        }
    }
    return n;
}

/* RFC 6901 section 4: "0", or digits without a leading zero. */
static bool array_index(const char *tok, size_t len, size_t *out)
{
    if (len == 0 || len > 18 || (len > 1 && tok[0] == '0'))
        return false;
    size_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (tok[i] < '0' || tok[i] > '9')
            return false;
        v = v * 10 + (size_t)(tok[i] - '0');
    }
    *out = v;
    return true;
}

json_t *voc_json_pointer_get(const json_t *doc, const char *ptr)
{
    if (!doc || !voc_json_pointer_valid(ptr))
        return NULL;
    json_t *cur = (json_t *)doc;
    if (ptr[0] == '\0')
        return cur;
    char *buf = malloc(strlen(ptr) + 1);
    if (!buf)
        return NULL;
    const char *p = ptr;
    while (cur && *p == '/') {
        const char *start = p + 1;
        const char *end = strchr(start, '/');
        if (!end)
            end = start + strlen(start);
        size_t len = decode_token(start, end, buf);
        if (json_is_object(cur)) {
            cur = json_object_getn(cur, buf, len);
        } else if (json_is_array(cur)) {
            size_t index;
            cur = array_index(buf, len, &index) ? json_array_get(cur, index) : NULL;
        } else {
            cur = NULL;
        }
        p = end;
    }
    free(buf);
    return cur;
}

/* ---- body ---------------------------------------------------------------------------------- */

int voc_webhook_parse_body(const char *buf, size_t len, bool any_value, json_t **out,
                           struct voc_webhook_error *err)
{
    json_error_t jerr;
    /* Same rules as the core's API: duplicate keys would make "which value counts?"
     * ambiguous, so they are refused. */
    json_t *value = json_loadb(buf ? buf : "", len,
                               JSON_REJECT_DUPLICATES | (any_value ? JSON_DECODE_ANY : 0), &jerr);
    if (!value) {
        if (json_error_code(&jerr) == json_error_invalid_utf8)
            set_err(err, "invalid_utf8", "body is not valid UTF-8 (byte %d)", jerr.position);
        else if (len == 0)
            set_err(err, "invalid_json", "empty body: a JSON %s is required",
                    any_value ? "document" : "object");
        else
            set_err(err, "invalid_json", "invalid JSON at line %d column %d: %s", jerr.line,
                    jerr.column, jerr.text);
        return -1;
    }
    if (!any_value && !json_is_object(value)) {
        json_decref(value);
        set_err(err, "wrong_type", "body must be a JSON object (an intake record)");
        return -1;
    }
    *out = value;
    return 0;
}

/* ---- map ----------------------------------------------------------------------------------- */

static const char *const top_strings[] = {"external_id", "channel", "source", "subject",
                                          "text",        "expected", NULL};
static const char *const customer_keys[] = {"name", "contact", "region", "account", NULL};
static const char *const product_keys[] = {"name", "model", "batch", NULL};

static bool in_list(const char *const *list, const char *word)
{
    for (size_t i = 0; list[i]; i++)
        if (strcmp(list[i], word) == 0)
            return true;
    return false;
}

/* Split a target ("customer.name") into group, key and kind. Returns 0 or -1. */
static int classify_target(const char *target, struct entry *e)
{
    const char *dot = strchr(target, '.');
    if (!dot) {
        if (in_list(top_strings, target))
            e->kind = T_STRING;
        else if (strcmp(target, "received_at") == 0)
            e->kind = T_TIME;
        else if (strcmp(target, "attachments") == 0)
            e->kind = T_ARRAY;
        else if (strcmp(target, "fields") == 0)
            e->kind = T_FIELDS;
        else
            return -1;
        e->key = strdup(target);
        return e->key ? 0 : -1;
    }
    size_t glen = (size_t)(dot - target);
    const char *key = dot + 1;
    if (glen == 8 && strncmp(target, "customer", 8) == 0 && in_list(customer_keys, key)) {
        e->kind = T_STRING;
    } else if (glen == 7 && strncmp(target, "product", 7) == 0 && in_list(product_keys, key)) {
        e->kind = T_STRING;
    } else if (glen == 6 && strncmp(target, "fields", 6) == 0 && key[0]) {
        e->kind = T_ANY;
    } else {
        return -1;
    }
    e->group = strndup(target, glen);
    e->key = strdup(key);
    return e->group && e->key ? 0 : -1;
}

void voc_webhook_map_free(struct voc_webhook_map *map)
{
    if (!map)
        return;
    for (size_t i = 0; i < map->count; i++) {
        free(map->entries[i].target);
        free(map->entries[i].group);
        free(map->entries[i].key);
        free(map->entries[i].pointer);
    }
    free(map->entries);
    free(map);
}

int voc_webhook_map_compile(const struct voc_kv *entries, size_t count,
                            struct voc_webhook_map **out, char *errbuf, size_t errlen)
{
    struct voc_webhook_map *map = calloc(1, sizeof *map);
    if (!map || !(map->entries = calloc(count ? count : 1, sizeof *map->entries))) {
        free(map);
        snprintf(errbuf, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < count; i++) {
        const char *target = entries[i].key, *pointer = entries[i].value;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(entries[j].key, target) == 0) {
                snprintf(errbuf, errlen, "map: '%s' is mapped twice", target);
                goto fail;
            }
        }
        struct entry e = {0};
        if (classify_target(target, &e) != 0) {
            free(e.group);
            free(e.key);
            snprintf(errbuf, errlen,
                     "map: '%s' is not an intake field (external_id, channel, source, "
                     "received_at, subject, text, expected, customer.{name,contact,region,"
                     "account}, product.{name,model,batch}, attachments, fields, "
                     "fields.<name>)",
                     target);
            goto fail;
        }
        if (!voc_json_pointer_valid(pointer)) {
            free(e.group);
            free(e.key);
            snprintf(errbuf, errlen,
                     "map: '%s': '%s' is not a JSON pointer (\"\" for the whole payload, or "
                     "\"/a/b\"; '~' only as ~0 or ~1)",
                     target, pointer);
            goto fail;
        }
        e.target = strdup(target);
        e.pointer = strdup(pointer);
        if (!e.target || !e.pointer) {
            free(e.target);
            free(e.pointer);
            free(e.group);
            free(e.key);
            snprintf(errbuf, errlen, "out of memory");
            goto fail;
        }
        /* The whole-`fields` entry goes first: fields.<name> entries then refine it. */
        if (e.kind == T_FIELDS && map->count > 0) {
            map->entries[map->count] = map->entries[0];
            map->entries[0] = e;
        } else {
            map->entries[map->count] = e;
        }
        map->count++;
    }
    for (size_t i = 0; i < map->count; i++) {
        const struct entry *e = &map->entries[i];
        if (!e->group && strcmp(e->key, "text") == 0)
            map->text_pointer = e->pointer;
        if (!e->group && strcmp(e->key, "subject") == 0)
            map->subject_pointer = e->pointer;
    }
    if (!map->text_pointer && !map->subject_pointer) {
        snprintf(errbuf, errlen, "map must name 'text' or 'subject' (every case needs one)");
        goto fail;
    }
    *out = map;
    return 0;
fail:
    voc_webhook_map_free(map);
    return -1;
}

static const char *type_word(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        return "null";
    }
    return "?";
}

/* "payload /user/name (mapped to customer.name)" */
static void where(const struct entry *e, char *buf, size_t len)
{
    if (e->pointer[0])
        snprintf(buf, len, "payload value at '%s' (mapped to '%s')", e->pointer, e->target);
    else
        snprintf(buf, len, "the payload (mapped to '%s')", e->target);
}

/* Integer Unix seconds -> RFC 3339 UTC. */
static json_t *unix_time(json_int_t seconds)
{
    /* 9999-12-31T23:59:59Z: beyond it the text would not be RFC 3339. */
    if (seconds < 0 || seconds > 253402300799LL)
        return NULL;
    time_t t = (time_t)seconds;
    struct tm tm;
    if (!gmtime_r(&t, &tm))
        return NULL;
    char text[32];
    strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return json_string(text);
}

/* The value to store for one entry, or NULL with err set. */
static json_t *convert(const struct entry *e, json_t *v, struct voc_webhook_error *err)
{
    char w[600];
    switch (e->kind) {
    case T_STRING:
        if (json_is_string(v))
            return json_incref(v);
        if (json_is_integer(v)) {
            char text[32];
            snprintf(text, sizeof text, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
            return json_string(text);
        }
        where(e, w, sizeof w);
        set_err(err, "wrong_type", "%s must be a string, not %s", w, type_word(v));
        return NULL;
    case T_TIME:
        if (json_is_string(v))
            return json_incref(v);
        if (json_is_integer(v)) {
            json_t *t = unix_time(json_integer_value(v));
            if (t)
                return t;
            where(e, w, sizeof w);
            set_err(err, "wrong_type", "%s is not a time in Unix seconds: %" JSON_INTEGER_FORMAT,
                    w, json_integer_value(v));
            return NULL;
        }
        where(e, w, sizeof w);
        set_err(err, "wrong_type", "%s must be an RFC 3339 string or Unix seconds, not %s", w,
                type_word(v));
        return NULL;
    case T_ARRAY:
        if (json_is_array(v))
            return json_deep_copy(v);
        where(e, w, sizeof w);
        set_err(err, "wrong_type", "%s must be an array, not %s", w, type_word(v));
        return NULL;
    case T_FIELDS:
        if (json_is_object(v))
            return json_deep_copy(v);
        where(e, w, sizeof w);
        set_err(err, "wrong_type", "%s must be an object, not %s", w, type_word(v));
        return NULL;
    case T_ANY:
        return json_deep_copy(v);
    }
    return NULL;
}

/* record[group] as an object, created on first use. */
static json_t *group_object(json_t *record, const char *group)
{
    json_t *g = json_object_get(record, group);
    if (!g) {
        g = json_object();
        if (!g || json_object_set_new(record, group, g) != 0)
            return NULL;
    }
    return g;
}

static bool has_text(const json_t *record, const char *key)
{
    const json_t *v = json_object_get(record, key);
    return json_is_string(v) && json_string_length(v) > 0;
}

int voc_webhook_map_apply(const struct voc_webhook_map *map, const json_t *payload,
                          json_t **out, struct voc_webhook_error *err)
{
    json_t *record = json_object();
    if (!record) {
        set_err(err, "internal", "out of memory");
        return -1;
    }
    for (size_t i = 0; i < map->count; i++) {
        const struct entry *e = &map->entries[i];
        json_t *v = voc_json_pointer_get(payload, e->pointer);
        if (!v || json_is_null(v))
            continue;
        json_t *value = convert(e, v, err);
        if (!value)
            goto fail;
        int rc;
        if (e->kind == T_FIELDS) {
            json_t *fields = group_object(record, "fields");
            rc = fields ? json_object_update(fields, value) : -1;
            json_decref(value);
        } else if (e->group) {
            json_t *g = group_object(record, e->group);
            rc = g ? json_object_set_new(g, e->key, value) : (json_decref(value), -1);
        } else {
            rc = json_object_set_new(record, e->key, value);
        }
        if (rc != 0) {
            set_err(err, "internal", "out of memory");
            goto fail;
        }
    }
    if (!has_text(record, "text") && !has_text(record, "subject")) {
        char at[300] = "";
        if (map->text_pointer)
            snprintf(at, sizeof at, "'%s'", map->text_pointer);
        if (map->subject_pointer)
            snprintf(at + strlen(at), sizeof at - strlen(at), "%s'%s'", at[0] ? " or " : "",
                     map->subject_pointer);
        set_err(err, "missing_field",
                "'text' or 'subject' is required: the payload has no text at %s", at);
        goto fail;
    }
    *out = record;
    return 0;
fail:
    json_decref(record);
    return -1;
}

int voc_webhook_record_finish(json_t *record, const char *channel, const char *idempotency_key,
                              struct voc_webhook_error *err)
{
    json_t *v = json_object_get(record, "channel");
    if ((!v || json_is_null(v)) && json_object_set_new(record, "channel", json_string(channel))) {
        set_err(err, "internal", "out of memory");
        return -1;
    }
    v = json_object_get(record, "external_id");
    if (idempotency_key && (!v || json_is_null(v))) {
        size_t len = strlen(idempotency_key);
        if (len == 0 || len > MAX_EXTERNAL_ID) {
            set_err(err, "wrong_type", "Idempotency-Key must be 1 to %d bytes", MAX_EXTERNAL_ID);
            return -1;
        }
        /* jansson refuses to build a string from invalid UTF-8. */
        json_t *key = json_stringn(idempotency_key, len);
        if (!key) {
            set_err(err, "invalid_utf8", "Idempotency-Key is not valid UTF-8");
            return -1;
        }
        if (json_object_set_new(record, "external_id", key) != 0) {
            set_err(err, "internal", "out of memory");
            return -1;
        }
    }
    return 0;
}
