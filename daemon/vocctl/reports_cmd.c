/* vocctl breaches | report: SLA breaches and period reports. Their JSON has no fixed table
 * layout in docs/api.md, so the human form is the generic rendering of output.h. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client.h"
#include "output.h"
#include "vocctl.h"

/* ---- breaches ---- */

static const char breaches_help[] =
    "usage: vocctl breaches [--json]\n"
    "List the cases with an SLA clock in warning or breached, most overdue first.\n";

/* The object's only array member, when everything else is a scalar (a list answer with
 * a few facts beside it); NULL otherwise. */
static const char *single_list(const json_t *doc)
{
    const char *list = NULL;
    const char *key;
    const json_t *v;
    json_object_foreach ((json_t *)doc, key, v) {
        if (json_is_array(v)) {
            if (list)
                return NULL;
            list = key;
        } else if (json_is_object(v)) {
            return NULL;
        }
    }
    return list;
}

int voc_ctl_cmd_breaches(struct voc_ctl *ctl, int argc, char **argv)
{
    static const struct option options[] = {VOC_CTL_COMMON_OPTIONS, {NULL, 0, NULL, 0}};
    int opt, rc = 0;
    while ((opt = voc_ctl_getopt(ctl, argc, argv, ":h", options, breaches_help, &rc)) != -1)
        if (opt == -2)
            return rc;
    if (optind < argc)
        return voc_ctl_usage_error(argv[0], breaches_help, "unexpected argument '%s'",
                                   argv[optind]);

    json_t *doc;
    struct voc_ctl_response raw;
    if (voc_ctl_call(ctl, "GET", "/api/v1/breaches?limit=1000", NULL, &doc, &raw) != 0)
        return VOC_CTL_EXIT_ERROR;
    int ret = VOC_CTL_EXIT_OK;
    /* vocd pages the list (and ends a page early on a large store): follow next_cursor so
     * the output has every breach, as one document (as `cases --all` does). A single page is
     * printed as vocd sent it. */
    bool paged = false;
    json_t *all = json_object_get(doc, "breaches");
    const char *cursor;
    while (json_is_array(all) &&
           (cursor = json_string_value(json_object_get(doc, "next_cursor"))) != NULL) {
        struct voc_ctl_path path;
        voc_ctl_path_init(&path, "/api/v1/breaches");
        voc_ctl_path_query(&path, "limit", "1000");
        voc_ctl_path_query(&path, "cursor", cursor);
        json_t *page = NULL;
        int call = path.failed ? voc_ctl_error("out of memory")
                               : voc_ctl_call(ctl, "GET", path.text, NULL, &page, NULL);
        voc_ctl_path_free(&path);
        if (call != 0) {
            ret = VOC_CTL_EXIT_ERROR;
            goto done;
        }
        const char *next = json_string_value(json_object_get(page, "next_cursor"));
        if (next && strcmp(next, cursor) == 0) {
            ret = voc_ctl_error("vocd returned the same cursor twice; stopping");
            json_decref(page);
            goto done;
        }
        json_array_extend(all, json_object_get(page, "breaches"));
        json_object_set(doc, "next_cursor", json_object_get(page, "next_cursor"));
        json_decref(page);
        paged = true;
    }
    if (ctl->json) {
        if (!paged)
            voc_ctl_print_raw(&raw);
        else if (json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != 0 ||
                 fputc('\n', stdout) == EOF)
            ret = VOC_CTL_EXIT_ERROR;
        goto done;
    }
    const json_t *list = json_is_array(doc) ? doc : NULL;
    const char *list_key = json_is_object(doc) ? single_list(doc) : NULL;
    if (list_key)
        list = json_object_get(doc, list_key);
    if (list && json_array_size(list) == 0) {
        printf("no breaches\n");
    } else if (list) {
        if (voc_ctl_render_json(stdout, list) != 0)
            ret = VOC_CTL_EXIT_ERROR;
        /* The facts beside the list (a time of evaluation, a cursor ...), if any. */
        const char *key;
        const json_t *v;
        json_object_foreach (json_is_object(doc) ? doc : NULL, key, v) {
            if (v == list || json_is_null(v))
                continue;
            char *text = voc_ctl_scalar(key, v);
            voc_ctl_kv(stdout, "", 0, key, text);
            free(text);
        }
    } else if (voc_ctl_render_json(stdout, doc) != 0) {
        ret = VOC_CTL_EXIT_ERROR;
    }
done:
    voc_ctl_response_free(&raw);
    json_decref(doc);
    return ret;
}

/* ---- report ---- */

static const char report_help[] =
    "usage: vocctl report [--from DATE] [--to DATE] [--format json|csv|html]\n"
    "Aggregates for a period: volumes by kind, category, channel and department, SLA\n"
    "compliance, satisfaction. DATE is passed to vocd as given (YYYY-MM-DD or RFC 3339).\n"
    "  --from DATE      start of the period\n"
    "  --to DATE        end of the period\n"
    "  --format F       json: the server's JSON; csv or html: the document as vocd\n"
    "                   writes it, on stdout. Without --format: a readable summary\n"
    "  --json           the same as --format json\n";

int voc_ctl_cmd_report(struct voc_ctl *ctl, int argc, char **argv)
{
    enum { O_FROM = 1, O_TO, O_FORMAT };
    static const struct option options[] = {
        VOC_CTL_COMMON_OPTIONS,
        {"from", required_argument, NULL, O_FROM},
        {"to", required_argument, NULL, O_TO},
        {"format", required_argument, NULL, O_FORMAT},
        {NULL, 0, NULL, 0},
    };
    const char *from = NULL, *to = NULL, *format = NULL;
    int opt, rc = 0;
    while ((opt = voc_ctl_getopt(ctl, argc, argv, ":h", options, report_help, &rc)) != -1) {
        if (opt == -2)
            return rc;
        if (opt == O_FROM)
            from = optarg;
        else if (opt == O_TO)
            to = optarg;
        else if (opt == O_FORMAT)
            format = optarg;
    }
    if (optind < argc)
        return voc_ctl_usage_error(argv[0], report_help, "unexpected argument '%s'", argv[optind]);
    if (format && strcmp(format, "json") != 0 && strcmp(format, "csv") != 0 &&
        strcmp(format, "html") != 0)
        return voc_ctl_usage_error(argv[0], report_help, "--format is json, csv or html, not '%s'",
                                   format);
    if (format && ctl->json && strcmp(format, "json") != 0)
        return voc_ctl_usage_error(argv[0], report_help, "--json and --format %s disagree", format);
    bool document = format && strcmp(format, "json") != 0;

    struct voc_ctl_path path;
    voc_ctl_path_init(&path, "/api/v1/reports");
    voc_ctl_path_query(&path, "from", from);
    voc_ctl_path_query(&path, "to", to);
    voc_ctl_path_query(&path, "format", format);
    if (path.failed) {
        voc_ctl_path_free(&path);
        return voc_ctl_error("out of memory");
    }
    int ret = VOC_CTL_EXIT_ERROR;
    if (document) {
        /* CSV and HTML go to stdout byte for byte as they arrive: a big report never sits
         * in memory, and a BOM or CRLF line ends stay what vocd made them. */
        struct voc_ctl_response resp;
        fflush(stdout);
        if (voc_ctl_request(ctl, "GET", path.text, NULL, STDOUT_FILENO, "stdout", &resp) == 0) {
            if (resp.status >= 200 && resp.status <= 299)
                ret = VOC_CTL_EXIT_OK;
            else
                voc_ctl_print_error(&resp);
            voc_ctl_response_free(&resp);
        }
        goto done;
    }
    json_t *doc;
    struct voc_ctl_response raw;
    if (voc_ctl_call(ctl, "GET", path.text, NULL, &doc, &raw) != 0)
        goto done;
    if (ctl->json || format)
        ret = (voc_ctl_print_raw(&raw), VOC_CTL_EXIT_OK);
    else
        ret = voc_ctl_render_json(stdout, doc) == 0 ? VOC_CTL_EXIT_OK : VOC_CTL_EXIT_ERROR;
    voc_ctl_response_free(&raw);
    json_decref(doc);
done:
    voc_ctl_path_free(&path);
    return ret;
}
