#include "case_view.h"
#include "sla.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

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
    json_object_foreach((json_t *)record, key, value)
    {
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
    static const char *const from_class[] = {"kind", "category", "severity", "department",
                                             "priority", NULL};
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
    if (masked) {
        json_object_set_new(customer, "contact", json_string(masked));
        free(masked);
    }
}
