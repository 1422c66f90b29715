#include "case_view.h"
#include "sla.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "timeutil.h"

/* Record fields that are bookkeeping, not part of the case as users see it. */
static const char *const internal_fields[] = {"before_wait", "event_count", NULL};

static int is_internal(const char *key)
{
    for (int i = 0; internal_fields[i]; i++)
        if (strcmp(internal_fields[i], key) == 0)
            return 1;
    return 0;
}

json_t *voc_case_view(const json_t *record, const json_t *events, int64_t now_us)
{
    json_t *view = json_object();
    const char *key;
    json_t *value;
    json_object_foreach ((json_t *)record, key, value) {
        if (!is_internal(key))
            json_object_set(view, key, value);
    }
    json_object_set_new(view, "clocks",
                        voc_sla_clocks_view(json_object_get(record, "clocks"), now_us));
    json_object_set_new(view, "events", events ? json_copy((json_t *)events) : json_array());
    return view;
}

json_t *voc_case_summary(const json_t *record)
{
    json_t *c = json_object_get(record, "classification");
    json_t *s = json_object();
    json_object_set(s, "id", json_object_get(record, "id"));
    json_object_set(s, "state", json_object_get(record, "state"));
    json_object_set(s, "received_at", json_object_get(record, "received_at"));
    json_object_set(s, "channel", json_object_get(record, "channel"));
    json_object_set(s, "subject", json_object_get(record, "subject"));
    static const char *const from_class[] = {"kind",       "category", "severity",
                                             "department", "priority", NULL};
    for (int i = 0; from_class[i]; i++) {
        json_t *v = json_object_get(c, from_class[i]);
        json_object_set(s, from_class[i], v ? v : json_null());
    }
    json_t *breached = json_object_get(record, "breached");
    json_object_set_new(s, "breached", json_boolean(json_is_true(breached)));
    return s;
}

char *voc_mask_contact(const char *contact)
{
    size_t len = strlen(contact);
    const char *at = strchr(contact, '@');
    char *out = malloc(len + 8);
    if (!out)
        return NULL;
    if (at && at > contact) {
        /* z***@example.com: the domain tells a person which mailbox kind it is, not who. */
        out[0] = contact[0];
        strcpy(out + 1, "***");
        strcat(out, at);
        return out;
    }
    size_t digits = 0;
    for (size_t i = 0; i < len; i++)
        digits += isdigit((unsigned char)contact[i]) != 0;
    if (digits >= 7 && len >= 7) {
        /* 138****5678: the usual way Chinese services show a phone number. */
        memcpy(out, contact, 3);
        strcpy(out + 3, "****");
        strcat(out, contact + len - 4);
        return out;
    }
    if (len == 0) {
        out[0] = '\0';
        return out;
    }
    /* Keep the first character whole, even when it is a multi-byte UTF-8 sequence. */
    size_t first = 1;
    while (first < len && ((unsigned char)contact[first] & 0xc0) == 0x80)
        first++;
    memcpy(out, contact, first);
    strcpy(out + first, "***");
    return out;
}

void voc_case_mask_contact(json_t *view)
{
    json_t *customer = json_object_get(view, "customer");
    const char *contact = json_string_value(json_object_get(customer, "contact"));
    if (!contact)
        return;
    char *masked = voc_mask_contact(contact);
    /* The view shares `customer` with the record it was built from: change a copy. */
    json_t *copy = json_copy(customer);
    json_object_set_new(copy, "contact", json_string(masked ? masked : "***"));
    json_object_set_new(view, "customer", copy);
    free(masked);
}

/* ---- masking for the viewer role ---- */

/* Bytes an address's local part or domain may have. UTF-8 bytes count (internationalised
 * addresses); a few more than RFC 5322 strictly allows is fine here: when unsure, mask. */
static bool local_byte(unsigned char c)
{
    return isalnum(c) || c >= 0x80 || strchr("!#$%&'*+-/=?^_`{|}~.", c) != NULL;
}

static bool domain_byte(unsigned char c)
{
    return isalnum(c) || c >= 0x80 || c == '-' || c == '.';
}

char *voc_mask_emails(const char *text, bool *found)
{
    *found = false;
    size_t len = strlen(text);
    /* Masking never makes an address longer than local's first character + "***". */
    char *out = malloc(len + 4 * (len / 2 + 1) + 1);
    if (!out)
        return NULL;
    size_t o = 0, copied = 0; /* text[copied..] is not in out yet */
    for (size_t at = 0; at < len; at++) {
        if (text[at] != '@')
            continue;
        size_t start = at;
        while (start > copied && local_byte((unsigned char)text[start - 1]))
            start--;
        size_t end = at + 1;
        bool dot = false;
        while (end < len && domain_byte((unsigned char)text[end])) {
            dot |= text[end] == '.';
            end++;
        }
        while (end > at + 1 && text[end - 1] == '.') /* a sentence's full stop */
            end--;
        if (start == at || end == at + 1 || !dot || text[at + 1] == '.')
            continue;
        /* The local part's first character, whole even when it is multi-byte UTF-8. */
        size_t first = start + 1;
        while (first < at && ((unsigned char)text[first] & 0xc0) == 0x80)
            first++;
        memcpy(out + o, text + copied, first - copied);
        o += first - copied;
        memcpy(out + o, "***", 3);
        o += 3;
        memcpy(out + o, text + at, end - at);
        o += end - at;
        copied = end;
        at = end - 1;
        *found = true;
    }
    memcpy(out + o, text + copied, len - copied);
    o += len - copied;
    out[o] = '\0';
    return out;
}

bool voc_looks_like_phone(const char *text)
{
    size_t digits = 0;
    for (const char *p = text; *p; p++) {
        if (isdigit((unsigned char)*p))
            digits++;
        else if (!strchr("+-(). ", *p))
            return false;
    }
    int64_t us;
    /* "2026-10-01" has eight digits and dashes: a date, not a number to call. */
    return digits >= 7 && digits <= 15 && voc_parse_time(text, &us) != 0;
}

/* Keys whose values name a person's mailbox or line, whatever their content. */
static bool contact_key(const char *key)
{
    static const char *const keys[] = {
        "contact", "contacts",  "email",      "e-mail",        "mail",        "mailbox",
        "phone",   "phones",    "mobile",     "tel",           "telephone",   "fax",
        "from",    "to",        "cc",         "bcc",           "reply_to",    "reply-to",
        "sender",  "recipient", "recipients", "envelope_from", "envelope_to", "return_path",
        "caller",  "callee",    "ani",        "msisdn",        NULL};
    for (int i = 0; keys[i]; i++)
        if (strcasecmp(key, keys[i]) == 0)
            return true;
    return false;
}

/* The masked replacement for one string (new reference), or NULL to keep it. */
static json_t *masked_string(const char *s, bool contact)
{
    bool found;
    char *masked = voc_mask_emails(s, &found);
    if (!masked)
        return json_string("***"); /* out of memory: hide rather than show */
    if (!found) {
        free(masked);
        if (!contact && !voc_looks_like_phone(s))
            return NULL;
        masked = voc_mask_contact(s);
        if (!masked)
            return json_string("***");
    }
    json_t *out = json_string(masked);
    free(masked);
    return out ? out : json_string("***"); /* masking cut a UTF-8 sequence: cannot happen */
}

/* The masked replacement for `value` (new reference), or NULL to keep it; containers are
 * changed in place. `contact`: the value sits under a contact-like key. */
static json_t *mask_value(json_t *value, bool contact)
{
    if (json_is_string(value))
        return masked_string(json_string_value(value), contact);
    if (json_is_integer(value) && contact) {
        char digits[32];
        snprintf(digits, sizeof digits, "%" JSON_INTEGER_FORMAT, json_integer_value(value));
        return masked_string(digits, true);
    }
    if (json_is_array(value)) {
        size_t i;
        json_t *item;
        json_array_foreach (value, i, item) {
            json_t *m = mask_value(item, contact);
            if (m)
                json_array_set_new(value, i, m);
        }
    } else if (json_is_object(value)) {
        const char *key;
        json_t *item;
        json_object_foreach (value, key, item) {
            json_t *m = mask_value(item, contact || contact_key(key));
            if (m)
                json_object_set_new(value, key, m);
        }
    }
    return NULL;
}

void voc_case_mask_for_viewer(json_t *view)
{
    voc_case_mask_contact(view);
    /* The view shares values with the stored record and events it came from (the events
     * array is the view's own, its members are not): mask copies. */
    json_t *fields = json_object_get(view, "fields");
    if (fields) {
        json_t *copy = json_deep_copy(fields);
        mask_value(copy, false);
        json_object_set_new(view, "fields", copy);
    }
    json_t *events = json_object_get(view, "events");
    size_t i;
    json_t *event;
    json_array_foreach (events, i, event) {
        json_t *data = json_object_get(event, "data");
        if (!data)
            continue;
        json_t *copy = json_deep_copy(data);
        mask_value(copy, false);
        json_t *masked_event = json_copy(event);
        json_object_set_new(masked_event, "data", copy);
        json_array_set_new(events, i, masked_event);
    }
}
