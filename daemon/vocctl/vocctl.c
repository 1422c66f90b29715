/* vocctl: the admin CLI of vocd, over the HTTP API (docs/api.md, docs/vocctl.md).
 * This file holds the global options and the command table; each command lives in its
 * own *_cmd.c module. */
#define _GNU_SOURCE /* asprintf, vasprintf */
#include "vocctl.h"

#include <errno.h>
#include <locale.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "version.h"

/* The command table: one line per command. */
static const struct voc_ctl_command commands[] = {
    {"status", voc_ctl_cmd_status, "version, uptime, profile, store and writer", false},
    {"cases", voc_ctl_cmd_cases, "list cases, newest first", false},
    {"show", voc_ctl_cmd_show, "one case: header, classification, clocks, events", false},
    {"event", voc_ctl_cmd_event, "append an event to a case", false},
    {"breaches", voc_ctl_cmd_breaches, "cases with an SLA clock in warning or breached", false},
    {"report", voc_ctl_cmd_report, "aggregates for a period (json, csv or html)", false},
    {"reload", voc_ctl_cmd_reload, "re-read config and profile in the daemon", false},
    {"backup", voc_ctl_cmd_backup, "save a compacted copy of the case store", false},
    {"rules", voc_ctl_cmd_rules, "run a Lua profile offline", true},
};

#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *out)
{
    fprintf(out, "usage: vocctl [--url URL] [--token TOKEN] [--json] COMMAND [ARGS]\n"
                 "\n"
                 "Admin CLI for vocd, the Voice-of-Customer daemon.\n"
                 "\n"
                 "Commands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(out, "  %-9s %s\n", commands[i].name, commands[i].summary);
    fprintf(out,
            "\n"
            "Options:\n"
            "  --url URL      vocd's HTTP address (env VOCD_URL, default " VOC_CTL_DEFAULT_URL ")\n"
            "  --token TOKEN  API token (env VOCD_TOKEN; prefer the variable, a command line\n"
            "                 is visible to other users in ps)\n"
            "  --json         print the server's JSON instead of tables\n"
            "  --version      print vocctl's version\n"
            "  --help         this text; `vocctl COMMAND --help` for a command\n"
            "\n"
            "Exit status: 0 ok, 1 error or usage error (message on stderr).\n");
}

int voc_ctl_error(const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    fputs("vocctl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return VOC_CTL_EXIT_ERROR;
}

int voc_ctl_usage_error(const char *cmd, const char *help, const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    fprintf(stderr, "vocctl %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    /* The synopsis (the help's first line) and where the rest is; the whole help would
     * bury the one line that says what was wrong. */
    size_t first = strcspn(help, "\n");
    fprintf(stderr, "\n%.*s\nTry 'vocctl %s --help'.\n", (int)first, help, cmd);
    return VOC_CTL_EXIT_USAGE;
}

int voc_ctl_getopt(struct voc_ctl *ctl, int argc, char **argv, const char *shortopts,
                   const struct option *longopts, const char *help, int *exit_code)
{
    /* The message is ours ("vocctl CMD: ..."), not getopt's, which would name argv[0]. */
    opterr = 0;
    int opt = getopt_long(argc, argv, shortopts, longopts, NULL);
    switch (opt) {
    case VOC_CTL_OPT_JSON:
        ctl->json = true;
        return voc_ctl_getopt(ctl, argc, argv, shortopts, longopts, help, exit_code);
    case VOC_CTL_OPT_HELP:
        fputs(help, stdout);
        *exit_code = VOC_CTL_EXIT_OK;
        return -2;
    case ':':
        *exit_code =
            voc_ctl_usage_error(argv[0], help, "option '%s' needs a value", argv[optind - 1]);
        return -2;
    case '?':
        if (optopt)
            *exit_code = voc_ctl_usage_error(argv[0], help, "unknown option '-%c'", optopt);
        else
            *exit_code =
                voc_ctl_usage_error(argv[0], help, "unknown option '%s'", argv[optind - 1]);
        return -2;
    default:
        return opt;
    }
}

int voc_ctl_parse_id(const char *text, unsigned long long *id)
{
    if (!text || *text < '0' || *text > '9')
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno || *end || v == 0)
        return -1;
    *id = v;
    return 0;
}

static const struct voc_ctl_command *find_command(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

/* A header value must stay one header: no CR, LF or other control characters. */
static bool header_safe(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return false;
    return true;
}

int main(int argc, char **argv)
{
    /* Character widths come from utf8proc, not the locale; the locale only matters for
     * strftime's names, and TZ for local times. */
    setlocale(LC_ALL, "");
    tzset();

    struct voc_ctl ctl = {.url = getenv("VOCD_URL"), .token = getenv("VOCD_TOKEN")};
    static const struct option options[] = {
        {"url", required_argument, NULL, 'u'}, {"token", required_argument, NULL, 't'},
        {"json", no_argument, NULL, 'j'},      {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},   {NULL, 0, NULL, 0},
    };
    opterr = 0;
    int opt;
    /* '+': stop at the command name; what follows belongs to the command. */
    while ((opt = getopt_long(argc, argv, "+:h", options, NULL)) != -1) {
        switch (opt) {
        case 'u':
            ctl.url = optarg;
            break;
        case 't':
            ctl.token = optarg;
            break;
        case 'j':
            ctl.json = true;
            break;
        case 'h':
            usage(stdout);
            return VOC_CTL_EXIT_OK;
        case 'V':
            printf("vocctl %s\n", VOC_VERSION);
            return VOC_CTL_EXIT_OK;
        case ':':
            fprintf(stderr, "vocctl: option '%s' needs a value\nTry 'vocctl --help'.\n",
                    argv[optind - 1]);
            return VOC_CTL_EXIT_USAGE;
        default:
            fprintf(stderr, "vocctl: unknown option '%s'\nTry 'vocctl --help'.\n",
                    argv[optind - 1]);
            return VOC_CTL_EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "vocctl: a command is required\n");
        usage(stderr);
        return VOC_CTL_EXIT_USAGE;
    }
    const char *name = argv[optind];
    if (strcmp(name, "help") == 0) {
        /* `vocctl help CMD` = `vocctl CMD --help` */
        if (optind + 1 >= argc) {
            usage(stdout);
            return VOC_CTL_EXIT_OK;
        }
        name = argv[optind + 1];
        const struct voc_ctl_command *cmd = find_command(name);
        if (cmd && cmd->run) {
            char *help_argv[] = {(char *)name, "--help", NULL};
            optind = 0;
            return cmd->run(&ctl, 2, help_argv);
        }
    }
    const struct voc_ctl_command *cmd = find_command(name);
    if (!cmd) {
        fprintf(stderr, "vocctl: unknown command '%s'\nTry 'vocctl --help'.\n", name);
        return VOC_CTL_EXIT_USAGE;
    }

    if (!ctl.url || !*ctl.url)
        ctl.url = VOC_CTL_DEFAULT_URL;
    if (!cmd->offline && strncmp(ctl.url, "http://", 7) != 0 &&
        strncmp(ctl.url, "https://", 8) != 0) {
        fprintf(stderr, "vocctl: --url must start with http:// or https://: '%s'\n", ctl.url);
        return VOC_CTL_EXIT_USAGE;
    }
    if (ctl.token && !header_safe(ctl.token)) {
        fprintf(stderr, "vocctl: the token contains control characters\n");
        return VOC_CTL_EXIT_USAGE;
    }
    if (ctl.token && !*ctl.token)
        ctl.token = NULL;
    /* Paths are appended to the base URL, which must not end in '/'. */
    char *url = strdup(ctl.url);
    if (!url)
        return voc_ctl_error("out of memory");
    for (size_t n = strlen(url); n > 0 && url[n - 1] == '/'; n--)
        url[n - 1] = '\0';
    ctl.url = url;

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
        free(url);
        return voc_ctl_error("cannot initialise libcurl");
    }
    /* GNU getopt: optind = 0 starts a fresh scan of the command's own argv. */
    int command_argc = argc - optind;
    char **command_argv = argv + optind;
    optind = 0;
    int rc = cmd->run(&ctl, command_argc, command_argv);
    if (ctl.curl)
        curl_easy_cleanup(ctl.curl);
    curl_global_cleanup();
    free(url);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        /* A full disk or a closed pipe must not look like success. */
        if (rc == VOC_CTL_EXIT_OK)
            rc = voc_ctl_error("cannot write the output: %s", strerror(errno));
    }
    return rc;
}
