/* vocctl cases: the case list with its filters and paging. */
#define _GNU_SOURCE /* asprintf */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client.h"
#include "output.h"
#include "vocctl.h"

static const char cases_help[] =
    "usage: vocctl cases [OPTIONS]\n"
    "List cases, newest received first.\n"
    "  --state S        only cases in state S (new, classified, assigned, ...)\n"
    "  --category C     only this category\n"
    "  --kind K         complaint, suggestion, praise, inquiry or opinion\n"
    "  --channel C      only this channel (email, hotline, webhook, ...)\n"
    "  --department D   only this department\n"
    "  --breached       only cases with a breached SLA clock\n"
    "  --since D        received at or after D (RFC 3339, or YYYY-MM-DD = local midnight)\n"
    "  --until D        received before D (same forms)\n"
    "  --q TEXT         TEXT in subject or text (after normalisation: 質量 finds 质量)\n"
    "  --limit N        at most N cases (server default 50, at most 1000); with --all,\n"
    "                   the page size\n"
    "  --all            follow next_cursor until the last page\n"
    "  --json           print the server's JSON (with --all: one object with every case)\n";

/* A bare date means midnight where the user is, like the local times vocctl prints;
 * vocd itself would read it as midnight UTC. *out is then buf; anything else goes to vocd
 * as typed (*out = text). Returns -1 for a date that does not exist. */
static int local_day_start(const char *text, char *buf, size_t len, const char **out)
{
    int y, m, d;
    char tail;
    *out = text;
    if (strlen(text) != 10 || sscanf(text, "%4d-%2d-%2d%c", &y, &m, &d, &tail) != 3)
        return 0;
    struct tm tm = {.tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = d, .tm_isdst = -1};
    time_t t = mktime(&tm);
    /* mktime normalises 2026-02-30 to March 2nd: a changed date was not a date. */
    if (t == (time_t)-1 || tm.tm_year != y - 1900 || tm.tm_mon != m - 1 || tm.tm_mday != d)
        return -1;
    char zone[8];
    strftime(zone, sizeof zone, "%z", &tm); /* +0800 -> RFC 3339 wants +08:00 */
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d%.3s:%.2s", y, m, d, tm.tm_hour, tm.tm_min,
             tm.tm_sec, zone, zone + 3);
    *out = buf;
    return 0;
}

static int print_case_list(const json_t *cases)
{
    static const char *const headers[] = {"ID",   "RECEIVED", "STATE",    "CHANNEL",
                                          "KIND", "CATEGORY", "SEVERITY", "DEPARTMENT",
                                          "P",    "BREACHED", "SUBJECT"};
    enum {
        ID,
        RECEIVED,
        STATE,
        CHANNEL,
        KIND,
        CATEGORY,
        SEVERITY,
        DEPT,
        PRIO,
        BREACHED,
        SUBJECT,
        NCOLS
    };
    if (json_array_size(cases) == 0) {
        printf("no cases\n");
        return 0;
    }
    struct voc_ctl_table *t = voc_ctl_table_new(NCOLS, headers);
    if (!t)
        return voc_ctl_error("out of memory");
    voc_ctl_table_column(t, ID, VOC_CTL_COL_RIGHT, 0);
    voc_ctl_table_column(t, PRIO, VOC_CTL_COL_RIGHT, 0);
    voc_ctl_table_column(t, CATEGORY, VOC_CTL_COL_FLEX, 20);
    voc_ctl_table_column(t, DEPT, VOC_CTL_COL_FLEX, 20);
    voc_ctl_table_column(t, SUBJECT, VOC_CTL_COL_FLEX, 50);
    size_t i;
    const json_t *c;
    json_array_foreach(cases, i, c) {
        char when[64];
        voc_ctl_local_time(json_string_value(json_object_get(c, "received_at")), 0, when,
                           sizeof when);
        voc_ctl_table_row(t);
        voc_ctl_table_cellf(t, "%" JSON_INTEGER_FORMAT,
                            json_integer_value(json_object_get(c, "id")));
        voc_ctl_table_cell(t, when);
        voc_ctl_table_cell(t, json_string_value(json_object_get(c, "state")));
        voc_ctl_table_cell(t, json_string_value(json_object_get(c, "channel")));
        voc_ctl_table_cell(t, json_string_value(json_object_get(c, "kind")));
        voc_ctl_table_cell(t, json_string_value(json_object_get(c, "category")));
        voc_ctl_table_cell(t, json_string_value(json_object_get(c, "severity")));
        voc_ctl_table_cell(t, json_string_value(json_object_get(c, "department")));
        const json_t *prio = json_object_get(c, "priority");
        if (json_is_integer(prio))
            voc_ctl_table_cellf(t, "%" JSON_INTEGER_FORMAT, json_integer_value(prio));
        else
            voc_ctl_table_cell(t, NULL);
        voc_ctl_table_cell(t, json_is_true(json_object_get(c, "breached")) ? "yes" : "no");
        voc_ctl_table_cell(t, json_string_value(json_object_get(c, "subject")));
    }
    int rc = voc_ctl_table_print(t, stdout, "") == 0 ? 0 : 1;
    voc_ctl_table_free(t);
    return rc;
}

int voc_ctl_cmd_cases(struct voc_ctl *ctl, int argc, char **argv)
{
    enum {
        O_STATE = 1,
        O_CATEGORY,
        O_KIND,
        O_CHANNEL,
        O_DEPARTMENT,
        O_SINCE,
        O_UNTIL,
        O_Q,
        O_LIMIT,
        O_BREACHED,
        O_ALL,
        NFILTERS = O_LIMIT
    };
    static const struct option options[] = {
        VOC_CTL_COMMON_OPTIONS,
        {"state", required_argument, NULL, O_STATE},
        {"category", required_argument, NULL, O_CATEGORY},
        {"kind", required_argument, NULL, O_KIND},
        {"channel", required_argument, NULL, O_CHANNEL},
        {"department", required_argument, NULL, O_DEPARTMENT},
        {"since", required_argument, NULL, O_SINCE},
        {"until", required_argument, NULL, O_UNTIL},
        {"q", required_argument, NULL, O_Q},
        {"limit", required_argument, NULL, O_LIMIT},
        {"breached", no_argument, NULL, O_BREACHED},
        {"all", no_argument, NULL, O_ALL},
        {NULL, 0, NULL, 0},
    };
    /* Query parameter per option, indexed by the option value. */
    static const char *const params[NFILTERS + 1] = {
        [O_STATE] = "state",
        [O_CATEGORY] = "category",
        [O_KIND] = "kind",
        [O_CHANNEL] = "channel",
        [O_DEPARTMENT] = "department",
        [O_SINCE] = "since",
        [O_UNTIL] = "until",
        [O_Q] = "q",
        [O_LIMIT] = "limit",
    };
    const char *values[NFILTERS + 1] = {0};
    char since[64], until[64];
    bool breached = false, all = false;
    int opt, rc = 0;
    while ((opt = voc_ctl_getopt(ctl, argc, argv, ":h", options, cases_help, &rc)) != -1) {
        if (opt == -2)
            return rc;
        if (opt == O_BREACHED)
            breached = true;
        else if (opt == O_ALL)
            all = true;
        else if (opt >= O_STATE && opt <= O_LIMIT)
            values[opt] = optarg;
    }
    if (optind < argc)
        return voc_ctl_usage_error(argv[0], cases_help, "unexpected argument '%s'", argv[optind]);
    unsigned long long limit;
    if (values[O_LIMIT] && voc_ctl_parse_id(values[O_LIMIT], &limit) != 0)
        return voc_ctl_usage_error(argv[0], cases_help, "--limit needs a positive number, not '%s'",
                                   values[O_LIMIT]);
    if (values[O_SINCE] &&
        local_day_start(values[O_SINCE], since, sizeof since, &values[O_SINCE]) != 0)
        return voc_ctl_usage_error(argv[0], cases_help, "--since: no such date '%s'",
                                   values[O_SINCE]);
    if (values[O_UNTIL] &&
        local_day_start(values[O_UNTIL], until, sizeof until, &values[O_UNTIL]) != 0)
        return voc_ctl_usage_error(argv[0], cases_help, "--until: no such date '%s'",
                                   values[O_UNTIL]);
    /* --all without --limit: big pages, fewer round trips. */
    if (all && !values[O_LIMIT])
        values[O_LIMIT] = "1000";

    json_t *collected = json_array();
    char *cursor = NULL;
    bool more = false;
    int ret = VOC_CTL_EXIT_ERROR;
    if (!collected)
        return voc_ctl_error("out of memory");
    for (;;) {
        struct voc_ctl_path path;
        voc_ctl_path_init(&path, "/api/v1/cases");
        for (int f = O_STATE; f <= NFILTERS; f++)
            voc_ctl_path_query(&path, params[f], values[f]);
        if (breached)
            voc_ctl_path_query(&path, "breached", "true");
        voc_ctl_path_query(&path, "cursor", cursor);
        if (path.failed) {
            voc_ctl_path_free(&path);
            voc_ctl_error("out of memory");
            goto done;
        }
        json_t *page;
        struct voc_ctl_response raw;
        int call = voc_ctl_call(ctl, "GET", path.text, NULL, &page, &raw);
        voc_ctl_path_free(&path);
        if (call != 0)
            goto done;
        json_t *cases = json_object_get(page, "cases");
        const char *next = json_string_value(json_object_get(page, "next_cursor"));
        if (!json_is_array(cases)) {
            voc_ctl_error("vocd's answer has no 'cases' list");
            json_decref(page);
            voc_ctl_response_free(&raw);
            goto done;
        }
        if (ctl->json && !all) {
            /* One page: the server's JSON exactly as sent. */
            voc_ctl_print_raw(&raw);
            json_decref(page);
            voc_ctl_response_free(&raw);
            ret = VOC_CTL_EXIT_OK;
            goto done;
        }
        voc_ctl_response_free(&raw);
        json_array_extend(collected, cases);
        if (next && cursor && strcmp(next, cursor) == 0) {
            voc_ctl_error("vocd returned the same cursor twice; stopping");
            json_decref(page);
            goto done;
        }
        free(cursor);
        cursor = next ? strdup(next) : NULL;
        json_decref(page);
        if (next && !cursor) {
            voc_ctl_error("out of memory");
            goto done;
        }
        if (!cursor)
            break;
        if (!all) {
            more = true;
            break;
        }
    }
    if (ctl->json) {
        json_t *doc = json_pack("{s:O, s:n}", "cases", collected, "next_cursor");
        char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
        json_decref(doc);
        if (!text) {
            voc_ctl_error("out of memory");
            goto done;
        }
        printf("%s\n", text);
        free(text);
        ret = VOC_CTL_EXIT_OK;
        goto done;
    }
    ret = print_case_list(collected);
    if (ret == 0 && more) {
        fflush(stdout);
        fprintf(stderr, "(more cases: --all for every page, or --limit N)\n");
    }
done:
    free(cursor);
    json_decref(collected);
    return ret;
}
