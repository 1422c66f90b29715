/* Classifications per second of each shipped profile (scripts/profiles/NAME.lua) on one core,
 * over N synthetic Chinese cases (default 100,000), next to a no-op classify measured in the
 * same run on the same cases: the ratio says how much the profile's own rules cost on top of
 * a hook call (case view to Lua, protected call, result check).
 *
 * The cases are made from the realistic test cases in tests/profiles/PROFILE/NAME.json
 * (Simplified, Traditional, full-width): case i takes the subject of one, the text of another,
 * a filler sentence in either script and a serial number, so no two texts are alike and no
 * normalisation is remembered between cases. Each case is built as the daemon builds a new
 * case (intake validation, then the record with its `received` event).
 *
 * Two ways, as the daemon may call classify:
 *   stored   the view carries `normalized` (subject + "\n" + text normalised at intake)
 *   lazy     the view has no `normalized`: the engine normalises when the rule reads it
 * Cases are built BATCH at a time just before they are classified (so they are in the cache,
 * as a case the daemon has just built is) and only the classify calls are timed, in thread
 * CPU time: on a shared machine the wall clock would also count another process's turns.
 *
 * Usage: bench_classify [N] [PROFILE.lua ...]   (default: every shipped profile) */
#include "apierror.h"
#include "case_view.h"
#include "diag.h"
#include "intake.h"
#include "log.h"
#include "rules.h"
#include "textnorm.h"
#include "timeutil.h"

#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BATCH 64

static const char *const fillers[] = {
    "客户要求尽快回电。",       "已在系统中登记。",       "",
    "客戶希望儘快處理。",       "來電時間較晚，已留言。", "请相关部门跟进。",
    "ＶＩＰ客户，请优先处理！", "附件为现场照片。",
};
#define FILLERS (sizeof fillers / sizeof fillers[0])

struct source {
    char **subjects, **texts;
    size_t count, cap;
};

/* CPU time of this thread: on a shared machine the wall clock also counts the time another
 * process had the core, the thread's CPU time only what classifying took. */
static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void print_load(const char *when)
{
    char buf[128] = "?";
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (!fgets(buf, sizeof buf, f))
            snprintf(buf, sizeof buf, "?\n");
        fclose(f);
    }
    printf("load average %s: %s", when, buf);
}

static void add_text(struct source *s, const char *subject, const char *text)
{
    if (s->count == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 64;
        s->subjects = realloc(s->subjects, s->cap * sizeof *s->subjects);
        s->texts = realloc(s->texts, s->cap * sizeof *s->texts);
        if (!s->subjects || !s->texts) {
            fprintf(stderr, "out of memory\n");
            exit(1);
        }
    }
    s->subjects[s->count] = strdup(subject ? subject : "");
    s->texts[s->count] = strdup(text ? text : "");
    s->count++;
}

static int json_file(const struct dirent *d)
{
    size_t n = strlen(d->d_name);
    return n > 5 && strcmp(d->d_name + n - 5, ".json") == 0;
}

/* Every subject and text of tests/profiles/DIR/NAME.json. */
static void load_sources(struct source *s, const char *root)
{
    DIR *top = opendir(root);
    if (!top) {
        perror(root);
        exit(1);
    }
    struct dirent *d;
    while ((d = readdir(top)) != NULL) {
        if (d->d_name[0] == '.')
            continue;
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/%s", root, d->d_name);
        struct dirent **names = NULL;
        int n = scandir(dir, &names, json_file, alphasort);
        for (int i = 0; i < n; i++) {
            char path[8192];
            snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name);
            json_t *doc = json_load_file(path, 0, NULL);
            json_t *c = json_object_get(doc, "case");
            add_text(s, json_string_value(json_object_get(c, "subject")),
                     json_string_value(json_object_get(c, "text")));
            json_decref(doc);
            free(names[i]);
        }
        free(names);
    }
    closedir(top);
    if (s->count == 0) {
        fprintf(stderr, "no cases under %s\n", root);
        exit(1);
    }
}

/* Case i as the daemon stores a new one: validated intake, the record, its received event. */
static json_t *make_view(const struct source *s, long i, struct voc_textnorm *tn, bool stored)
{
    size_t a = (size_t)i % s->count, b = ((size_t)i * 7 + 3) % s->count;
    char text[8192];
    snprintf(text, sizeof text, "%s%s（工单%06ld）", s->texts[a], fillers[(size_t)i % FILLERS], i);
    const char *subject = s->subjects[i % 3 == 0 ? b : a];
    json_t *in =
        json_pack("{s:s, s:s, s:s, s:{s:s, s:s, s:s}, s:{s:s, s:s}, s:s, s:s, s:{s:s}}",
                  "external_id", "BENCH", "channel", i % 2 ? "hotline" : "web", "received_at",
                  "2026-11-23T09:15:00+08:00", "customer", "name", "张伟", "contact", "13812345678",
                  "region", "上海", "product", "name", "智能电饭煲", "model", "RC-50", "subject",
                  subject, "text", text, "fields", "来源", "bench");
    json_t *intake = NULL;
    struct voc_err err = {0};
    if (voc_intake_validate(in, NULL, 0, &intake, &err) != 0) {
        fprintf(stderr, "intake: %s\n", err.message);
        exit(1);
    }
    json_decref(in);
    json_t *record = json_object();
    json_object_set_new(record, "id", json_integer((json_int_t)i + 1));
    json_object_set_new(record, "state", json_string("new"));
    json_object_set_new(record, "created_at", json_string("2026-11-23T01:15:00.000Z"));
    json_object_set_new(record, "updated_at", json_string("2026-11-23T01:15:00.000Z"));
    json_object_update(record, intake);
    json_object_set_new(record, "classification", json_null());
    json_object_set_new(record, "duplicate_of", json_null());
    json_object_set_new(record, "duplicates", json_array());
    json_object_set_new(record, "reopen_count", json_integer(0));
    json_object_set_new(record, "satisfaction", json_null());
    json_object_set_new(record, "breached", json_false());
    if (stored && voc_intake_add_normalized(record, tn) != 0) {
        fprintf(stderr, "normalize failed\n");
        exit(1);
    }
    json_t *events =
        json_pack("[{s:i, s:s, s:s, s:s, s:n, s:{}}]", "seq", 1, "type", "received", "at",
                  "2026-11-23T01:15:00.000Z", "actor", "hotline", "note", "data");
    json_t *view = voc_case_view(record, events, 0);
    json_decref(events);
    json_decref(record);
    json_decref(intake);
    return view;
}

struct result {
    double seconds;
    long errors;
};

/* Classify n cases, built BATCH at a time outside the clock. */
static struct result run(struct voc_rules *r, const struct source *s, long n,
                         struct voc_textnorm *tn, bool stored)
{
    struct result res = {0};
    json_t **views = malloc(sizeof *views * BATCH);
    for (long base = 0; base < n; base += BATCH) {
        long m = n - base < BATCH ? n - base : BATCH;
        for (long k = 0; k < m; k++)
            views[k] = make_view(s, base + k, tn, stored);
        double t0 = now_s();
        for (long k = 0; k < m; k++) {
            json_t *cls = NULL;
            char *err = NULL;
            if (voc_rules_classify(r, views[k], &cls, &err) != 0) {
                if (res.errors++ == 0)
                    fprintf(stderr, "classify failed: %s\n", err ? err : "?");
            }
            free(err);
            json_decref(cls);
        }
        res.seconds += now_s() - t0;
        for (long k = 0; k < m; k++)
            json_decref(views[k]);
    }
    free(views);
    return res;
}

static struct voc_rules *load(const char *path)
{
    static const char *const calendars[] = {"workdays", NULL};
    struct voc_diag d;
    voc_diag_init(&d);
    struct voc_rules *r = NULL;
    if (voc_rules_load(path, VOC_LIB_DIR, NULL, calendars, &r, &d) != 0) {
        for (size_t i = 0; i < d.count; i++)
            fprintf(stderr, "%s\n", d.messages[i]);
        exit(1);
    }
    voc_diag_free(&d);
    return r;
}

static int lua_file(const struct dirent *d)
{
    size_t n = strlen(d->d_name);
    return n > 4 && strcmp(d->d_name + n - 4, ".lua") == 0;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 100000;
    if (n <= 0)
        n = 100000;
    voc_log_set_level(VOC_LOG_ERROR);
    struct source src = {0};
    load_sources(&src, VOC_CASES_DIR);
    struct voc_textnorm *tn = NULL;
    char *err = NULL;
    if (voc_textnorm_new(&tn, &err) != 0) {
        fprintf(stderr, "textnorm: %s\n", err);
        return 1;
    }

    char **profiles = NULL;
    int count = 0;
    if (argc > 2) {
        profiles = argv + 2;
        count = argc - 2;
    } else {
        struct dirent **names = NULL;
        count = scandir(VOC_PROFILES_DIR, &names, lua_file, alphasort);
        profiles = calloc((size_t)(count > 0 ? count : 1), sizeof *profiles);
        for (int i = 0; i < count; i++) {
            size_t len = strlen(VOC_PROFILES_DIR) + strlen(names[i]->d_name) + 2;
            profiles[i] = malloc(len);
            snprintf(profiles[i], len, "%s/%s", VOC_PROFILES_DIR, names[i]->d_name);
            free(names[i]);
        }
        free(names);
    }

    printf("%ld synthetic cases from %zu test texts; thread CPU time of classify only (cases are "
           "built %d at a time, untimed, just before)\n",
           n, src.count, BATCH);
    print_load("before");
    struct voc_rules *noop = load(VOC_NOOP_PROFILE);
    struct result noop_stored = run(noop, &src, n, tn, true);
    struct result noop_lazy = run(noop, &src, n, tn, false);
    printf("\n%-24s %-8s %12s %9s %8s %7s\n", "profile", "view", "classify/s", "us/case", "x no-op",
           "errors");
    printf("%-24s %-8s %12.0f %9.2f %8s %7ld\n", "(no-op classify)", "stored",
           (double)n / noop_stored.seconds, noop_stored.seconds / (double)n * 1e6, "1.00",
           noop_stored.errors);
    printf("%-24s %-8s %12.0f %9.2f %8s %7ld\n", "(no-op classify)", "lazy",
           (double)n / noop_lazy.seconds, noop_lazy.seconds / (double)n * 1e6, "1.00",
           noop_lazy.errors);
    voc_rules_free(noop);

    double general_rate = 0;
    for (int p = 0; p < count; p++) {
        struct voc_rules *r = load(profiles[p]);
        const char *name = voc_rules_name(r);
        struct result stored = run(r, &src, n, tn, true);
        struct result lazy = run(r, &src, n, tn, false);
        printf("%-24s %-8s %12.0f %9.2f %8.2f %7ld\n", name, "stored", (double)n / stored.seconds,
               stored.seconds / (double)n * 1e6, stored.seconds / noop_stored.seconds,
               stored.errors);
        printf("%-24s %-8s %12.0f %9.2f %8.2f %7ld\n", name, "lazy", (double)n / lazy.seconds,
               lazy.seconds / (double)n * 1e6, lazy.seconds / noop_lazy.seconds, lazy.errors);
        if (strcmp(name, "voc-general") == 0)
            general_rate = (double)n / stored.seconds;
        voc_rules_free(r);
    }
    print_load("after");
    printf("\n\"x no-op\": time per case / the no-op classify's on the same views (same way).\n");
    if (general_rate > 0)
        printf("goal: voc-general >= 200,000 classifications/s with `normalized` stored: "
               "%.0f/s, %s\n",
               general_rate, general_rate >= 200000 ? "met" : "NOT met");
    voc_textnorm_free(tn);
    for (size_t i = 0; i < src.count; i++) {
        free(src.subjects[i]);
        free(src.texts[i]);
    }
    free(src.subjects);
    free(src.texts);
    if (argc <= 2) {
        for (int i = 0; i < count; i++)
            free(profiles[i]);
        free(profiles);
    }
    return 0;
}
