#include "ack.h"

#include <string.h>

/* RFC 5322 keeps lines under 998 bytes; In-Reply-To adds its own name and brackets. */
#define MAX_REPLY_ID 900
/* RFC 5321: 64 for the local part, 255 for the domain. */
#define MAX_ADDRESS 320

static bool clock_running(const json_t *clock)
{
    const char *status = json_string_value(json_object_get(clock, "status"));
    return status && (strcmp(status, "running") == 0 || strcmp(status, "warning") == 0);
}

bool voc_ack_due(const json_t *case_view, const char *clock, int64_t *due)
{
    size_t i;
    json_t *c;
    json_array_foreach (json_object_get(case_view, "clocks"), i, c) {
        const char *name = json_string_value(json_object_get(c, "name"));
        if (clock && (!name || strcmp(name, clock) != 0))
            continue;
        const char *at = json_string_value(json_object_get(c, "due_at"));
        if (!clock_running(c) || !at) {
            if (clock)
                return false;
            continue;
        }
        GDateTime *t = g_date_time_new_from_iso8601(at, NULL);
        if (!t)
            continue;
        *due = g_date_time_to_unix(t) * G_USEC_PER_SEC + g_date_time_get_microsecond(t);
        g_date_time_unref(t);
        return true;
    }
    return false;
}

char *voc_ack_format_time(int64_t due, GTimeZone *tz, const char *format)
{
    GDateTime *utc = g_date_time_new_from_unix_utc(due / G_USEC_PER_SEC);
    GDateTime *local = utc ? g_date_time_to_timezone(utc, tz) : NULL;
    char *text = local ? g_date_time_format(local, format) : NULL;
    if (local)
        g_date_time_unref(local);
    if (utc)
        g_date_time_unref(utc);
    return text;
}

char *voc_ack_render(const char *template_text, const struct voc_ack_values *v)
{
    GString *out = g_string_new(NULL);
    for (const char *p = template_text; *p;) {
        if (*p == '{') {
            const char *end = strchr(p, '}');
            size_t n = end ? (size_t)(end - p - 1) : 0;
            const char *value = NULL;
            char number[24];
            if (end && n == 4 && strncmp(p + 1, "case", 4) == 0) {
                g_snprintf(number, sizeof number, "%" G_GUINT64_FORMAT, (guint64)v->case_id);
                value = number;
            } else if (end && n == 7 && strncmp(p + 1, "subject", 7) == 0) {
                value = v->subject ? v->subject : "";
            } else if (end && n == 4 && strncmp(p + 1, "name", 4) == 0) {
                value = v->name ? v->name : "";
            } else if (end && n == 3 && strncmp(p + 1, "due", 3) == 0) {
                value = v->due ? v->due : "";
            }
            if (value) {
                g_string_append(out, value);
                p = end + 1;
                continue;
            }
        }
        g_string_append_c(out, *p++);
    }
    return g_string_free(out, FALSE);
}

bool voc_ack_address_ok(const char *addr)
{
    if (!addr || !addr[0] || strlen(addr) > MAX_ADDRESS)
        return false;
    const char *at = strchr(addr, '@');
    if (!at || at == addr || !at[1] || strchr(at + 1, '@'))
        return false;
    for (const unsigned char *c = (const unsigned char *)addr; *c; c++)
        if (*c <= 0x20 || *c >= 0x7f || *c == '<' || *c == '>' || *c == ',' || *c == ';')
            return false;
    return true;
}

bool voc_ack_message_id_ok(const char *id)
{
    if (!id || !id[0] || strlen(id) > MAX_REPLY_ID)
        return false;
    for (const unsigned char *c = (const unsigned char *)id; *c; c++)
        if (*c <= 0x20 || *c >= 0x7f || *c == '<' || *c == '>')
            return false;
    return true;
}
