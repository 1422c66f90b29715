/* vocctl: the admin CLI of vocd. What every command module shares: the run context, the
 * command table entry, and the usage-error and exit-code conventions (CONTRACT.md,
 * "Binaries"): exit 0 ok, 1 error (message on stderr), 2 usage error.
 *
 * Adding a command: write daemon/vocctl/<name>_cmd.c with one function of type
 * voc_ctl_cmd_fn, declare it below, and add one line to the table in vocctl.c. CMake picks
 * the file up by itself (daemon/vocctl/CMakeLists.txt globs *.c).
 */
#ifndef VOC_CTL_H
#define VOC_CTL_H

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>

#include <curl/curl.h>

#define VOC_CTL_EXIT_OK 0
#define VOC_CTL_EXIT_ERROR 1
/* CONTRACT.md gives vocctl one error status: a usage error is an error too (1), told apart
 * by its message, and nothing is sent. */
#define VOC_CTL_EXIT_USAGE 1

#define VOC_CTL_DEFAULT_URL "http://127.0.0.1:8080"

/* One vocctl run: the global options and the HTTP handle (reused so that paging keeps
 * the connection). */
struct voc_ctl {
    const char *url;   /* base URL without a trailing slash */
    const char *token; /* NULL: no Authorization header */
    bool json;         /* --json: print the server's JSON instead of tables */
    CURL *curl;        /* created on the first request */
};

/* A command gets argv with argv[0] = its own name and returns the exit code. */
typedef int (*voc_ctl_cmd_fn)(struct voc_ctl *ctl, int argc, char **argv);

struct voc_ctl_command {
    const char *name;
    voc_ctl_cmd_fn run;  /* NULL: known name, not part of this build */
    const char *summary; /* one line for `vocctl --help` */
    bool offline;        /* works on files only: --url / VOCD_URL are not checked */
};

/* Options every command accepts; put VOC_CTL_COMMON_OPTIONS first in a command's
 * struct option array and let voc_ctl_common_option() handle them. */
#define VOC_CTL_OPT_JSON 0x1001
#define VOC_CTL_OPT_HELP 'h'
#define VOC_CTL_COMMON_OPTIONS                                                                     \
    {"json", no_argument, NULL, VOC_CTL_OPT_JSON},                                                 \
    {                                                                                              \
        "help", no_argument, NULL, VOC_CTL_OPT_HELP                                                \
    }

/* getopt_long over a command's argv with the common options and the error conventions:
 * returns the option, or -1 at the end. On --help it prints `help` to stdout and sets
 * *exit_code = 0; on a bad option it prints the problem and the synopsis to stderr and sets
 * *exit_code = 2; both return -2, and the command returns *exit_code. `shortopts` must
 * start with ':' and include 'h'. */
int voc_ctl_getopt(struct voc_ctl *ctl, int argc, char **argv, const char *shortopts,
                   const struct option *longopts, const char *help, int *exit_code);

/* Print "vocctl CMD: <message>", the synopsis (first line of `help`) and a pointer to
 * --help on stderr; returns 2. */
int voc_ctl_usage_error(const char *cmd, const char *help, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Print "vocctl: <message>" to stderr; returns 1. */
int voc_ctl_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A case id given on the command line: a positive decimal integer. 0 or -1. */
int voc_ctl_parse_id(const char *text, unsigned long long *id);

/* Commands, one per module. */
int voc_ctl_cmd_status(struct voc_ctl *ctl, int argc, char **argv);
int voc_ctl_cmd_cases(struct voc_ctl *ctl, int argc, char **argv);
int voc_ctl_cmd_show(struct voc_ctl *ctl, int argc, char **argv);
int voc_ctl_cmd_event(struct voc_ctl *ctl, int argc, char **argv);
int voc_ctl_cmd_breaches(struct voc_ctl *ctl, int argc, char **argv);
int voc_ctl_cmd_report(struct voc_ctl *ctl, int argc, char **argv);
int voc_ctl_cmd_reload(struct voc_ctl *ctl, int argc, char **argv);
int voc_ctl_cmd_backup(struct voc_ctl *ctl, int argc, char **argv);
/* Offline profile commands (`rules test`, `rules replay`), in rules_cmd.c when built. */
int voc_ctl_cmd_rules(struct voc_ctl *ctl, int argc, char **argv);

#endif
