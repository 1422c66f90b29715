/* vocd: the Voice-of-Customer daemon. Runs in the foreground and logs to stderr. */
#include <event2/event.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "log.h"
#include "metrics.h"
#include "options.h"
#include "plugin_host.h"
#include "version.h"

#define DEFAULT_CONFIG "etc/vocd.yaml"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: vocd [-c FILE] [--check] [--version]\n"
            "  -c, --config FILE  configuration (default " DEFAULT_CONFIG ")\n"
            "      --check        load config, plugins and profile, print every problem as\n"
            "                     file:line: message, exit 0 (valid) or 1\n"
            "      --version      print the version\n"
            "      --options      print every config key (core, and the configured plugins')\n"
            "                     as a Markdown table\n"
            "Signals: SIGHUP reloads config and profile, SIGTERM drains and exits 0.\n");
}

int main(int argc, char **argv)
{
    const char *config = DEFAULT_CONFIG;
    int check = 0, describe = 0;
    static const struct option options[] = {
        {"config", required_argument, NULL, 'c'},
        {"check", no_argument, NULL, 'k'},
        {"version", no_argument, NULL, 'V'},
        {"options", no_argument, NULL, 'O'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int opt;
    while ((opt = getopt_long(argc, argv, "c:h", options, NULL)) != -1) {
        switch (opt) {
        case 'c':
            config = optarg;
            break;
        case 'k':
            check = 1;
            break;
        case 'O':
            describe = 1;
            break;
        case 'V':
            printf("vocd %s\n", VOC_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "vocd: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }

    struct voc_diag diag;
    voc_diag_init(&diag);
    if (describe) {
        printf("| key | type | default | meaning |\n|---|---|---|---|\n");
        voc_options_describe(voc_config_options(), "", stdout);
        /* Plugin sections need the config to know which plugins and where they are. */
        struct voc_config *cfg = voc_config_load(config, &diag);
        if (cfg)
            voc_plugins_describe(cfg, stdout);
        voc_config_free(cfg);
        voc_diag_free(&diag);
        return 0;
    }
    if (check) {
        /* --check prints to stdout, one problem per line, so scripts can read it. */
        voc_log_set_level(VOC_LOG_WARN);
        int rc = voc_daemon_check(config, &diag);
        for (size_t i = 0; i < diag.count; i++)
            printf("%s\n", diag.messages[i]);
        if (rc == 0)
            printf("%s: ok\n", config);
        voc_diag_free(&diag);
        return rc == 0 ? 0 : 1;
    }

    struct voc_daemon d;
    int rc = voc_daemon_start(&d, config, &diag);
    voc_diag_log(&diag, "config");
    voc_diag_free(&diag);
    if (rc != 0) {
        voc_error("daemon", "start-up failed");
        voc_daemon_free(&d);
        voc_metrics_reset();
        return 1;
    }
    rc = voc_daemon_run(&d);
    voc_daemon_free(&d);
    voc_metrics_reset();
    /* Frees libevent's global lock state, so a valgrind run of a clean shutdown ends with
     * nothing left. */
    libevent_global_shutdown();
    voc_info("daemon", "stopped");
    return rc;
}
