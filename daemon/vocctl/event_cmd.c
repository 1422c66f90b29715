/* vocctl event: append an event to a case. */
#define _GNU_SOURCE /* asprintf */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "output.h"
#include "vocctl.h"

static const char event_help[] =
    "usage: vocctl event [OPTIONS] ID TYPE\n"
    "Append an event (assigned, planned, resolved, note, ...) to case ID.\n"
    "  --note TEXT        the note (required for 'rejected': the reason)\n"
    "  --actor NAME       who did it (default: the token's name)\n"
    "  --data KEY=VALUE   a data field; repeatable. Integers (42, -1, not 007) stay\n"
    "                     integers, true/false are booleans, anything else a string\n"
    "  --data-json JSON   data as a JSON object, for nested values; --data fields are\n"
    "                     set on top of it\n"
    "  --json             print the server's JSON answer\n"
    "Examples:\n"
    "  vocctl event 42 assigned --data department=质量部 --note '转质量部处理'\n"
    "  vocctl event 42 revisited --data satisfaction=5\n"
    "  vocctl event 42 duplicate --data of=17\n";

/* The typed value of one --data VALUE. */
static json_t *data_value(const char *text)
{
    if (strcmp(text, "true") == 0)
        return json_true();
    if (strcmp(text, "false") == 0)
        return json_false();
    /* An integer only in canonical form: "007" or "+5" are more likely codes than numbers,
     * and turning them into 7 or 5 would lose what the user typed. */
    const char *digits = text[0] == '-' ? text + 1 : text;
    bool canonical = digits[0] >= '1' && digits[0] <= '9';
    if (strcmp(text, "0") == 0)
        canonical = true;
    for (const char *p = digits; canonical && *p; p++)
        if (*p < '0' || *p > '9')
            canonical = false;
    if (canonical) {
        errno = 0;
        long long v = strtoll(text, NULL, 10);
        if (errno == 0)
            return json_integer(v);
    }
    return json_string(text);
}

int voc_ctl_cmd_event(struct voc_ctl *ctl, int argc, char **argv)
{
    enum { O_NOTE = 1, O_ACTOR, O_DATA, O_DATA_JSON };
    static const struct option options[] = {
        VOC_CTL_COMMON_OPTIONS,
        {"note", required_argument, NULL, O_NOTE},
        {"actor", required_argument, NULL, O_ACTOR},
        {"data", required_argument, NULL, O_DATA},
        {"data-json", required_argument, NULL, O_DATA_JSON},
        {NULL, 0, NULL, 0},
    };
    const char *note = NULL, *actor = NULL, *data_json = NULL;
    json_t *fields = json_object(); /* --data, applied over --data-json */
    json_t *body = NULL;
    int opt, rc = VOC_CTL_EXIT_ERROR;
    if (!fields)
        return voc_ctl_error("out of memory");
    while ((opt = voc_ctl_getopt(ctl, argc, argv, ":h", options, event_help, &rc)) != -1) {
        if (opt == -2)
            goto done;
        if (opt == O_NOTE) {
            note = optarg;
        } else if (opt == O_ACTOR) {
            actor = optarg;
        } else if (opt == O_DATA_JSON) {
            data_json = optarg;
        } else if (opt == O_DATA) {
            const char *eq = strchr(optarg, '=');
            if (!eq || eq == optarg) {
                rc = voc_ctl_usage_error(argv[0], event_help, "--data wants KEY=VALUE, not '%s'",
                                         optarg);
                goto done;
            }
            char *key = strndup(optarg, (size_t)(eq - optarg));
            json_t *value = data_value(eq + 1);
            /* jansson refuses keys and strings that are not UTF-8 (NULL / -1 here). */
            if (!key || !value || json_object_set_new(fields, key, value) != 0) {
                free(key);
                rc = voc_ctl_usage_error(argv[0], event_help, "--data '%s' is not UTF-8", optarg);
                goto done;
            }
            free(key);
        }
    }
    if (argc - optind != 2) {
        rc = voc_ctl_usage_error(argv[0], event_help, "wants a case ID and an event TYPE");
        goto done;
    }
    unsigned long long id;
    if (voc_ctl_parse_id(argv[optind], &id) != 0) {
        rc = voc_ctl_usage_error(argv[0], event_help, "not a case ID: '%s'", argv[optind]);
        goto done;
    }
    const char *type = argv[optind + 1];

    json_t *data;
    if (data_json) {
        json_error_t jerr;
        data = json_loads(data_json, JSON_DECODE_ANY, &jerr);
        if (!data) {
            rc = voc_ctl_usage_error(argv[0], event_help, "--data-json: %s (column %d)", jerr.text,
                                     jerr.column);
            goto done;
        }
        if (!json_is_object(data)) {
            json_decref(data);
            rc = voc_ctl_usage_error(argv[0], event_help, "--data-json must be a JSON object");
            goto done;
        }
    } else {
        data = json_object();
    }
    body = json_pack("{s:s, s:o}", "type", type, "data", data);
    if (!body) {
        rc = voc_ctl_usage_error(argv[0], event_help, "TYPE must be UTF-8");
        goto done;
    }
    json_object_update(data, fields);
    if (actor)
        json_object_set_new(body, "actor", json_string(actor));
    if (note)
        json_object_set_new(body, "note", json_string(note));
    if ((actor && !json_object_get(body, "actor")) || (note && !json_object_get(body, "note"))) {
        rc = voc_ctl_usage_error(argv[0], event_help, "--actor and --note must be UTF-8");
        goto done;
    }

    char path[80];
    snprintf(path, sizeof path, "/api/v1/cases/%llu/events", id);
    json_t *answer;
    struct voc_ctl_response raw;
    if (voc_ctl_call(ctl, "POST", path, body, &answer, &raw) != 0)
        goto done;
    if (ctl->json) {
        voc_ctl_print_raw(&raw);
    } else {
        char *state =
            voc_ctl_clean(json_string_value(json_object_get(answer, "state")) ?: "?", false);
        char *clean_type = voc_ctl_clean(type, false);
        printf("case %llu: event %" JSON_INTEGER_FORMAT " '%s' recorded, state %s\n", id,
               json_integer_value(json_object_get(answer, "seq")), clean_type ? clean_type : "",
               state ? state : "");
        free(state);
        free(clean_type);
    }
    voc_ctl_response_free(&raw);
    json_decref(answer);
    rc = VOC_CTL_EXIT_OK;
done:
    json_decref(body);
    json_decref(fields);
    return rc;
}
