/* vocctl reload | backup: the admin endpoints. */
#define _GNU_SOURCE /* asprintf, vasprintf */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client.h"
#include "output.h"
#include "vocctl.h"

/* ---- reload ---- */

static const char reload_help[] =
    "usage: vocctl reload [--json]\n"
    "Make vocd re-read its config file and Lua profile. vocd validates both first; when\n"
    "something is wrong it keeps the old ones and vocctl prints every problem as\n"
    "file:line: message and exits 1. Warnings of a successful reload go to stderr.\n";

int voc_ctl_cmd_reload(struct voc_ctl *ctl, int argc, char **argv)
{
    static const struct option options[] = {VOC_CTL_COMMON_OPTIONS, {NULL, 0, NULL, 0}};
    int opt, rc = 0;
    while ((opt = voc_ctl_getopt(ctl, argc, argv, ":h", options, reload_help, &rc)) != -1)
        if (opt == -2)
            return rc;
    if (optind < argc)
        return voc_ctl_usage_error(argv[0], reload_help, "unexpected argument '%s'", argv[optind]);

    json_t *doc;
    struct voc_ctl_response raw;
    /* A 422 (reload_failed) comes back as an error with its details lines, printed by
     * voc_ctl_print_error. */
    if (voc_ctl_call(ctl, "POST", "/api/v1/admin/reload", NULL, &doc, &raw) != 0)
        return VOC_CTL_EXIT_ERROR;
    if (ctl->json) {
        voc_ctl_print_raw(&raw);
    } else {
        const char *profile = json_string_value(json_object_get(doc, "profile"));
        char *clean = voc_ctl_clean(profile ? profile : "(none)", false);
        printf("reloaded, profile %s\n", clean ? clean : "?");
        free(clean);
        fflush(stdout);
        size_t i;
        const json_t *w;
        json_array_foreach(json_object_get(doc, "warnings"), i, w) {
            char *line = voc_ctl_clean(json_string_value(w) ?: "", false);
            fprintf(stderr, "warning: %s\n", line ? line : "");
            free(line);
        }
    }
    voc_ctl_response_free(&raw);
    json_decref(doc);
    return VOC_CTL_EXIT_OK;
}

/* ---- backup ---- */

static const char backup_help[] =
    "usage: vocctl backup [--json] FILE\n"
    "Save a compacted copy of vocd's LMDB case store, taken online from one read\n"
    "transaction, as FILE. The data goes to FILE.tmp first, is synced to disk and only\n"
    "then renamed to FILE, so FILE is either the complete backup or untouched.\n"
    "To restore: put FILE as data.mdb in an empty folder and point data_dir at it.\n";

/* The temporary file, for the signal handler: an interrupted backup must not leave it. */
static const char *volatile interrupted_tmp;

static void on_interrupt(int sig)
{
    const char *tmp = interrupted_tmp;
    if (tmp)
        unlink(tmp); /* async-signal-safe */
    signal(sig, SIG_DFL);
    raise(sig);
}

static void catch_interrupts(bool on)
{
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
    struct sigaction sa = {.sa_handler = on ? on_interrupt : SIG_DFL};
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaction(sigs[i], &sa, NULL);
}

/* Make the rename itself durable: sync the folder that holds FILE. */
static int sync_parent(const char *file)
{
    char *copy = strdup(file);
    if (!copy)
        return -1;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(copy);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int voc_ctl_cmd_backup(struct voc_ctl *ctl, int argc, char **argv)
{
    static const struct option options[] = {VOC_CTL_COMMON_OPTIONS, {NULL, 0, NULL, 0}};
    int opt, rc = 0;
    while ((opt = voc_ctl_getopt(ctl, argc, argv, ":h", options, backup_help, &rc)) != -1)
        if (opt == -2)
            return rc;
    if (argc - optind != 1)
        return voc_ctl_usage_error(argv[0], backup_help, "wants one FILE");
    const char *file = argv[optind];
    if (!*file)
        return voc_ctl_usage_error(argv[0], backup_help, "FILE must not be empty");

    char *tmp;
    if (asprintf(&tmp, "%s.tmp", file) < 0)
        return voc_ctl_error("out of memory");
    int ret = VOC_CTL_EXIT_ERROR;
    struct voc_ctl_response resp = {0};
    catch_interrupts(true);
    /* 0600: the backup holds every customer's name and contact. */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        voc_ctl_error("cannot create %s: %s", tmp, strerror(errno));
        goto done;
    }
    interrupted_tmp = tmp; /* from here on, ours to remove */
    if (voc_ctl_request(ctl, "POST", "/api/v1/admin/backup", NULL, fd, tmp, &resp) != 0)
        goto done;
    if (resp.status < 200 || resp.status > 299) {
        voc_ctl_print_error(&resp);
        goto done;
    }
    if (resp.sunk == 0) {
        voc_ctl_error("vocd sent an empty backup");
        goto done;
    }
    if (fsync(fd) != 0) {
        voc_ctl_error("cannot sync %s: %s", tmp, strerror(errno));
        goto done;
    }
    int closed = close(fd);
    fd = -1;
    if (closed != 0) {
        voc_ctl_error("cannot write %s: %s", tmp, strerror(errno));
        goto done;
    }
    if (rename(tmp, file) != 0) {
        voc_ctl_error("cannot rename %s to %s: %s", tmp, file, strerror(errno));
        goto done;
    }
    interrupted_tmp = NULL;
    if (sync_parent(file) != 0) {
        /* FILE is complete; only the rename may not survive a power cut yet. */
        voc_ctl_error("backup written, but syncing the folder of %s failed: %s", file,
                      strerror(errno));
        goto done;
    }
    if (ctl->json) {
        json_t *doc = json_pack("{s:s, s:I}", "file", file, "bytes", (json_int_t)resp.sunk);
        char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
        json_decref(doc);
        if (!text) {
            voc_ctl_error("backup written to %s, but its name is not UTF-8 for JSON", file);
            goto done;
        }
        printf("%s\n", text);
        free(text);
    } else {
        char size[32];
        voc_ctl_bytes((double)resp.sunk, size, sizeof size);
        printf("backup: %llu bytes (%s) written to %s\n", resp.sunk, size, file);
    }
    ret = VOC_CTL_EXIT_OK;
done:
    if (fd >= 0)
        close(fd);
    if (interrupted_tmp)
        unlink(tmp);
    catch_interrupts(false);
    interrupted_tmp = NULL;
    voc_ctl_response_free(&resp);
    free(tmp);
    return ret;
}
