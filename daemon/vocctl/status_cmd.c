/* vocctl status: what the daemon is running and how full it is. */
#define _GNU_SOURCE /* asprintf */
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "output.h"
#include "vocctl.h"

static const char status_help[] =
    "usage: vocctl status [--json]\n"
    "Show vocd's version, uptime, profile, number of cases, store and writer queue.\n";

int voc_ctl_cmd_status(struct voc_ctl *ctl, int argc, char **argv)
{
    static const struct option options[] = {VOC_CTL_COMMON_OPTIONS, {NULL, 0, NULL, 0}};
    int opt, rc = 0;
    while ((opt = voc_ctl_getopt(ctl, argc, argv, ":h", options, status_help, &rc)) != -1)
        if (opt == -2)
            return rc;
    if (optind < argc)
        return voc_ctl_usage_error(argv[0], status_help, "unexpected argument '%s'", argv[optind]);

    json_t *doc;
    struct voc_ctl_response raw;
    if (voc_ctl_call(ctl, "GET", "/api/v1/status", NULL, &doc, &raw) != 0)
        return VOC_CTL_EXIT_ERROR;
    if (ctl->json) {
        voc_ctl_print_raw(&raw);
        goto done;
    }
    char buf[256], a[64], b[64];
    const size_t w = 12;
    voc_ctl_kv(stdout, "", w, "version", json_string_value(json_object_get(doc, "version")));
    voc_ctl_duration(json_number_value(json_object_get(doc, "uptime_s")), buf, sizeof buf);
    voc_ctl_kv(stdout, "", w, "uptime", buf);
    const char *profile = json_string_value(json_object_get(doc, "profile"));
    voc_ctl_kv(stdout, "", w, "profile", profile ? profile : "(none)");
    snprintf(buf, sizeof buf, "%" JSON_INTEGER_FORMAT,
             json_integer_value(json_object_get(doc, "cases")));
    voc_ctl_kv(stdout, "", w, "cases", buf);
    json_t *store = json_object_get(doc, "store");
    voc_ctl_kv(stdout, "", w, "store", json_string_value(json_object_get(store, "path")));
    voc_ctl_bytes(json_number_value(json_object_get(store, "used_bytes")), a, sizeof a);
    voc_ctl_bytes(json_number_value(json_object_get(store, "map_size")), b, sizeof b);
    snprintf(buf, sizeof buf, "%s of a %s map, schema %" JSON_INTEGER_FORMAT, a, b,
             json_integer_value(json_object_get(store, "schema_version")));
    voc_ctl_kv(stdout, "", w, "store used", buf);
    json_t *writer = json_object_get(doc, "writer");
    snprintf(buf, sizeof buf, "%" JSON_INTEGER_FORMAT " of %" JSON_INTEGER_FORMAT,
             json_integer_value(json_object_get(writer, "queue")),
             json_integer_value(json_object_get(writer, "queue_limit")));
    voc_ctl_kv(stdout, "", w, "write queue", buf);
    json_t *plugins = json_object_get(doc, "plugins");
    char *list = json_array_size(plugins) ? voc_ctl_scalar(NULL, plugins) : strdup("(none)");
    voc_ctl_kv(stdout, "", w, "plugins", list);
    free(list);
    if (json_object_get(doc, "draining"))
        voc_ctl_kv(stdout, "", w, "draining",
                   json_is_true(json_object_get(doc, "draining")) ? "yes" : "no");
done:
    voc_ctl_response_free(&raw);
    json_decref(doc);
    return VOC_CTL_EXIT_OK;
}
