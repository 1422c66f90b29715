/* vocctl show: one case, its classification, SLA clocks and event timeline. */
#define _GNU_SOURCE /* asprintf */
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "output.h"
#include "vocctl.h"

static const char show_help[] =
    "usage: vocctl show [--json] ID\n"
    "Show one case: header, customer and product, classification, SLA clocks and the\n"
    "event timeline. Times are in local time.\n";

#define LABEL_WIDTH 13

static void kv_time(const char *label, const json_t *obj, const char *key)
{
    char buf[64];
    voc_ctl_local_time(json_string_value(json_object_get(obj, key)),
                       VOC_CTL_TIME_SECONDS | VOC_CTL_TIME_ZONE, buf, sizeof buf);
    voc_ctl_kv(stdout, "", LABEL_WIDTH, label, buf);
}

/* "a · b · c" from the non-empty string members `keys` of obj; NULL when all are empty. */
static char *join_members(const json_t *obj, const char *const *keys, size_t n)
{
    char *out = NULL;
    for (size_t i = 0; i < n; i++) {
        const char *v = json_string_value(json_object_get(obj, keys[i]));
        if (!v || !*v)
            continue;
        char *next;
        if (asprintf(&next, "%s%s%s", out ? out : "", out ? " \xc2\xb7 " : "", v) < 0)
            break;
        free(out);
        out = next;
    }
    return out;
}

/* Event data as "key=value key=value": shorter than JSON, and what --data takes. */
static char *data_text(const json_t *data)
{
    char *out = strdup("");
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)data, key, v) {
        char *value = json_is_string(v) ? strdup(json_string_value(v))
                                        : json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        char *next = NULL;
        if (!out || !value || asprintf(&next, "%s%s%s=%s", out, *out ? " " : "", key, value) < 0)
            next = NULL;
        free(value);
        free(out);
        out = next;
    }
    return out;
}

static int print_clocks(const json_t *clocks)
{
    static const char *const headers[] = {"CLOCK", "STATUS", "TARGET", "STARTED", "DUE", "STOPPED"};
    struct voc_ctl_table *t = voc_ctl_table_new(6, headers);
    if (!t)
        return voc_ctl_error("out of memory");
    size_t i;
    const json_t *c;
    json_array_foreach(clocks, i, c) {
        char target[64], started[64], due[64], stopped[64];
        const json_t *target_s = json_object_get(c, "target_s");
        if (json_is_number(target_s))
            voc_ctl_duration(json_number_value(target_s), target, sizeof target);
        else
            snprintf(target, sizeof target, "-");
        voc_ctl_local_time(json_string_value(json_object_get(c, "started_at")), 0, started,
                           sizeof started);
        voc_ctl_local_time(json_string_value(json_object_get(c, "due_at")), 0, due, sizeof due);
        voc_ctl_local_time(json_string_value(json_object_get(c, "stopped_at")), 0, stopped,
                           sizeof stopped);
        voc_ctl_table_row(t);
        voc_ctl_table_cell(t, json_string_value(json_object_get(c, "name")));
        voc_ctl_table_cell(t, json_string_value(json_object_get(c, "status")));
        voc_ctl_table_cell(t, target);
        voc_ctl_table_cell(t, started);
        voc_ctl_table_cell(t, due);
        voc_ctl_table_cell(t, stopped);
    }
    int rc = voc_ctl_table_print(t, stdout, "  ") == 0 ? 0 : 1;
    voc_ctl_table_free(t);
    return rc;
}

static int print_events(const json_t *events)
{
    static const char *const headers[] = {"SEQ", "AT", "TYPE", "ACTOR", "NOTE", "DATA"};
    struct voc_ctl_table *t = voc_ctl_table_new(6, headers);
    if (!t)
        return voc_ctl_error("out of memory");
    voc_ctl_table_column(t, 0, VOC_CTL_COL_RIGHT, 0);
    voc_ctl_table_column(t, 3, VOC_CTL_COL_FLEX, 20);
    voc_ctl_table_column(t, 4, VOC_CTL_COL_FLEX, 40);
    voc_ctl_table_column(t, 5, VOC_CTL_COL_FLEX, 60);
    size_t i;
    const json_t *e;
    json_array_foreach(events, i, e) {
        char at[64];
        voc_ctl_local_time(json_string_value(json_object_get(e, "at")), VOC_CTL_TIME_SECONDS, at,
                           sizeof at);
        char *data = data_text(json_object_get(e, "data"));
        voc_ctl_table_row(t);
        voc_ctl_table_cellf(t, "%" JSON_INTEGER_FORMAT,
                            json_integer_value(json_object_get(e, "seq")));
        voc_ctl_table_cell(t, at);
        voc_ctl_table_cell(t, json_string_value(json_object_get(e, "type")));
        voc_ctl_table_cell(t, json_string_value(json_object_get(e, "actor")));
        voc_ctl_table_cell(t, json_string_value(json_object_get(e, "note")));
        voc_ctl_table_cell(t, data);
        free(data);
    }
    int rc = voc_ctl_table_print(t, stdout, "  ") == 0 ? 0 : 1;
    voc_ctl_table_free(t);
    return rc;
}

static void print_case(const json_t *c)
{
    static const char *const customer_keys[] = {"name", "contact", "region", "account"};
    static const char *const product_keys[] = {"name", "model", "batch"};
    char buf[64];
    printf("Case %" JSON_INTEGER_FORMAT "  [%s]\n", json_integer_value(json_object_get(c, "id")),
           json_string_value(json_object_get(c, "state")) ?: "?");
    voc_ctl_kv(stdout, "", LABEL_WIDTH, "subject",
               json_string_value(json_object_get(c, "subject")));
    kv_time("received", c, "received_at");
    const char *external = json_string_value(json_object_get(c, "external_id"));
    char *line;
    if (asprintf(
            &line, "%s%s%s, source %s", json_string_value(json_object_get(c, "channel")) ?: "-",
            external && *external ? ", external id " : "", external && *external ? external : "",
            json_string_value(json_object_get(c, "source")) ?: "-") < 0)
        line = NULL;
    voc_ctl_kv(stdout, "", LABEL_WIDTH, "channel", line);
    free(line);
    kv_time("created", c, "created_at");
    kv_time("updated", c, "updated_at");
    char *customer = join_members(json_object_get(c, "customer"), customer_keys, 4);
    voc_ctl_kv(stdout, "", LABEL_WIDTH, "customer", customer);
    free(customer);
    char *product = join_members(json_object_get(c, "product"), product_keys, 3);
    voc_ctl_kv(stdout, "", LABEL_WIDTH, "product", product);
    free(product);
    const char *expected = json_string_value(json_object_get(c, "expected"));
    if (expected && *expected)
        voc_ctl_kv(stdout, "", LABEL_WIDTH, "expected", expected);
    const json_t *dup_of = json_object_get(c, "duplicate_of");
    if (json_is_integer(dup_of)) {
        snprintf(buf, sizeof buf, "%" JSON_INTEGER_FORMAT, json_integer_value(dup_of));
        voc_ctl_kv(stdout, "", LABEL_WIDTH, "duplicate of", buf);
    }
    const json_t *dups = json_object_get(c, "duplicates");
    if (json_array_size(dups)) {
        char *list = voc_ctl_scalar(NULL, dups);
        voc_ctl_kv(stdout, "", LABEL_WIDTH, "duplicates", list);
        free(list);
    }
    json_int_t reopened = json_integer_value(json_object_get(c, "reopen_count"));
    if (reopened) {
        snprintf(buf, sizeof buf, "%" JSON_INTEGER_FORMAT " time%s", reopened,
                 reopened == 1 ? "" : "s");
        voc_ctl_kv(stdout, "", LABEL_WIDTH, "reopened", buf);
    }
    const json_t *satisfaction = json_object_get(c, "satisfaction");
    if (json_is_number(satisfaction)) {
        char *text = voc_ctl_scalar(NULL, satisfaction);
        snprintf(buf, sizeof buf, "%s of 5", text ? text : "?");
        free(text);
        voc_ctl_kv(stdout, "", LABEL_WIDTH, "satisfaction", buf);
    }
    size_t i;
    const json_t *a;
    json_array_foreach(json_object_get(c, "attachments"), i, a) {
        char size[32];
        voc_ctl_bytes(json_number_value(json_object_get(a, "size")), size, sizeof size);
        char *item;
        if (asprintf(&item, "%s (%s, %s)", json_string_value(json_object_get(a, "name")) ?: "?",
                     json_string_value(json_object_get(a, "type")) ?: "?", size) < 0)
            item = NULL;
        voc_ctl_kv(stdout, "", LABEL_WIDTH, i ? "" : "attachments", item);
        free(item);
    }
    const json_t *fields = json_object_get(c, "fields");
    if (json_object_size(fields)) {
        char *text = data_text(fields);
        voc_ctl_kv(stdout, "", LABEL_WIDTH, "fields", text);
        free(text);
    }
    const char *text = json_string_value(json_object_get(c, "text"));
    if (text && *text) {
        /* The full text, indented, newlines kept: this is the one place to read it. */
        char *clean = voc_ctl_clean(text, true);
        printf("\nText:\n  ");
        for (const char *p = clean ? clean : ""; *p; p++) {
            putchar(*p);
            if (*p == '\n' && p[1])
                fputs("  ", stdout);
        }
        putchar('\n');
        free(clean);
    }

    const json_t *cls = json_object_get(c, "classification");
    if (json_is_object(cls)) {
        static const char *const keys[] = {"kind",          "category", "severity", "department",
                                           "collaborators", "priority", "tags"};
        printf("\nClassification:\n");
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
            const json_t *v = json_object_get(cls, keys[k]);
            char *value = v && !(json_is_array(v) && json_array_size(v) == 0)
                              ? voc_ctl_scalar(keys[k], v)
                              : NULL;
            voc_ctl_kv(stdout, "  ", LABEL_WIDTH, keys[k], value);
            free(value);
        }
    }
}

int voc_ctl_cmd_show(struct voc_ctl *ctl, int argc, char **argv)
{
    static const struct option options[] = {VOC_CTL_COMMON_OPTIONS, {NULL, 0, NULL, 0}};
    int opt, rc = 0;
    while ((opt = voc_ctl_getopt(ctl, argc, argv, ":h", options, show_help, &rc)) != -1)
        if (opt == -2)
            return rc;
    if (argc - optind != 1)
        return voc_ctl_usage_error(argv[0], show_help,
                                   argc - optind ? "one case ID, please" : "a case ID is required");
    unsigned long long id;
    if (voc_ctl_parse_id(argv[optind], &id) != 0)
        return voc_ctl_usage_error(argv[0], show_help, "not a case ID: '%s'", argv[optind]);

    char path[64];
    snprintf(path, sizeof path, "/api/v1/cases/%llu", id);
    json_t *doc;
    struct voc_ctl_response raw;
    if (voc_ctl_call(ctl, "GET", path, NULL, &doc, &raw) != 0)
        return VOC_CTL_EXIT_ERROR;
    int ret = VOC_CTL_EXIT_OK;
    if (ctl->json) {
        voc_ctl_print_raw(&raw);
    } else {
        print_case(doc);
        const json_t *clocks = json_object_get(doc, "clocks");
        printf("\nClocks:\n");
        if (json_array_size(clocks) == 0)
            printf("  (none)\n");
        else if (print_clocks(clocks) != 0)
            ret = VOC_CTL_EXIT_ERROR;
        printf("\nEvents:\n");
        if (print_events(json_object_get(doc, "events")) != 0)
            ret = VOC_CTL_EXIT_ERROR;
    }
    voc_ctl_response_free(&raw);
    json_decref(doc);
    return ret;
}
