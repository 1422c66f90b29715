/* What the rule engine costs on the classification path:
 *   1. voc_normalize per call, by input kind, next to a bare OpenCC call on the same input;
 *   2. the keyword matcher over a 10 KB text, in C and through voc.contains_any;
 *   3. hook calls per second on one core: a guard that returns true (the fixed cost of a call:
 *      case view to Lua, the protected call, the result), and the keyword classify of
 *      bench_profile.lua three ways: the same case again (normalised text remembered), a new
 *      text every call (normalised from scratch), and a view that brings its stored
 *      `normalized` text.
 * Usage: bench_rules [SECONDS_PER_FIGURE]   (default 1) */
#include "diag.h"
#include "keyword_match.h"
#include "log.h"
#include "rules.h"
#include "textnorm.h"

#include <jansson.h>
#include <opencc/opencc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double seconds = 1.0;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Calls fn(arg, i) in batches until `seconds` have passed; returns seconds per call. */
static double measure(void (*fn)(void *arg, long i), void *arg)
{
    long n = 0;
    double t0 = now_s(), t;
    do {
        for (int k = 0; k < 200; k++, n++)
            fn(arg, n);
        t = now_s();
    } while (t - t0 < seconds);
    return (t - t0) / (double)n;
}

static const char *const samples[] = {
    "电饭煲用了三天就不能加热了，按下煮饭键后指示灯一直闪烁，内胆是凉的。断电重启过两次，问题依旧，"
    "家里老人每天都要用它做饭，希望尽快处理，给换一台新的。",
    "空调订单写的是二十日送达安装，送货师傅把机器放在楼下就走了，安装师傅改约三次都没有上门，"
    "客服电话一直占线，在线客服只会说请耐心等待，请给出明确的安装时间。",
    "扫地机器人边刷掉了，打售后热线问配件，客服很不耐烦，说是人为损坏不保修，没等我说完就挂断了，"
    "第二次打过去又被转了四个人，前后花了四十分钟。",
    "今天早上烧水，电热水壶底座突然冒烟，有很重的塑料焦味，底座下面已经发黑。这是严重的安全隐患，"
    "家里有小孩，请检查同批次产品，并给我书面答复。",
    "超市买的原味酸奶，打开后发现里面有黑色的异物，孩子已经喝了几口。包装完好，保质期内冷藏保存，"
    "小票和剩下的酸奶都留着，希望尽快说明异物来源。",
    "手表升级固件以后睡眠监测经常不准，夜里醒来两次也没有记录。另外希望能增加按周导出数据的功能，"
    "方便给医生看，手机是安卓的，应用是最新版本。",
};
#define SAMPLES (sizeof samples / sizeof samples[0])

/* ---- 1. normalisation --------------------------------------------------------------- */

struct norm_arg {
    struct voc_textnorm *tn;
    opencc_t cc;
    const char *text;
    size_t len;
};

static void run_normalize(void *p, long i)
{
    (void)i;
    struct norm_arg *a = p;
    char *out;
    size_t n;
    if (voc_normalize(a->tn, a->text, a->len, &out, &n) == VOC_NORM_OK)
        free(out);
}

static void run_opencc(void *p, long i)
{
    (void)i;
    struct norm_arg *a = p;
    char *out = opencc_convert_utf8(a->cc, a->text, a->len);
    opencc_convert_utf8_free(out);
}

static void bench_normalize(void)
{
    char *err = NULL;
    struct norm_arg a = {0};
    if (voc_textnorm_new(&a.tn, &err) != 0) {
        fprintf(stderr, "textnorm: %s\n", err);
        exit(1);
    }
    a.cc = opencc_open("/usr/share/opencc/t2s.json");
    if (a.cc == (opencc_t)-1)
        a.cc = opencc_open(OPENCC_DEFAULT_CONFIG_TRAD_TO_SIMP);
    char long_text[4096] = "";
    for (size_t i = 0; i < SAMPLES; i++)
        strcat(long_text, samples[i]);
    const struct {
        const char *label, *text;
    } inputs[] = {
        {"ASCII, 24 B", "Delivery LATE, order 1001"},
        {"full-width + Latin, 24 B", "ＶＩＰ Ｏｒｄｅｒ Straße"},
        {"Simplified, 4 chars", "质量问题"},
        {"Traditional, 4 chars", "質量問題"},
        {"case text, Simplified, ~70 chars", NULL},
        {"case text, Traditional, ~70 chars",
         "電飯煲用了三天就不能加熱了，按下煮飯鍵後指示燈一直閃爍，"
         "內膽是涼的。斷電重啟過兩次，問題依舊，家裡老人每天都要用"
         "它做飯，希望儘快處理。"},
        {"6 case texts, ~1.2 KB", long_text},
    };
    printf("1. voc_normalize (NFKC + case fold + t2s), per call\n");
    printf("   %-36s %12s %14s\n", "input", "normalize", "OpenCC alone");
    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
        a.text = inputs[i].text ? inputs[i].text : samples[0];
        a.len = strlen(a.text);
        double t = measure(run_normalize, &a);
        double c = measure(run_opencc, &a);
        printf("   %-36s %9.0f ns %11.0f ns\n", inputs[i].label, t * 1e9, c * 1e9);
    }
    opencc_close(a.cc);
    voc_textnorm_free(a.tn);
}

/* ---- 2. keyword search -------------------------------------------------------------- */

struct kw_arg {
    struct voc_kwmatch *m;
    const char *text;
    size_t len;
};

static void run_find(void *p, long i)
{
    (void)i;
    struct kw_arg *a = p;
    size_t index;
    volatile bool found = voc_kwmatch_find(a->m, a->text, a->len, &index);
    (void)found;
}

static void bench_keywords_from_lua(const char *text);

static void bench_keywords(void)
{
    static const char *const words[] = {
        "质量",     "坏了",     "故障",   "无法加热", "不能加热", "漏水",   "异响",   "破损",
        "发霉",     "变质",     "异物",   "冒烟",     "态度",     "不耐烦", "没人理", "推诿",
        "敷衍",     "挂断",     "延期",   "太慢",     "没到",     "超时",   "催单",   "没有上门",
        "功能",     "建议增加", "希望能", "不好用",   "兼容",     "不准",   "停产",   "批量",
        "安全隐患", "受伤",     "起火",   "食品安全", "孩子",     "退货",   "赔偿",   "投诉"};
    size_t n = sizeof words / sizeof words[0];
    size_t lens[64];
    for (size_t i = 0; i < n; i++)
        lens[i] = strlen(words[i]);
    struct kw_arg a = {0};
    char *err = NULL;
    if (voc_kwmatch_compile(words, lens, n, &a.m, &err) != 0) {
        fprintf(stderr, "compile: %s\n", err);
        exit(1);
    }
    /* Filler with no keyword in it: the whole 10 KB is scanned. */
    const char *filler = "客户来电反映情况，记录如下：使用一切正常，只是想了解保养方法。";
    size_t flen = strlen(filler);
    char *text = malloc(10 * 1024 + flen + 1);
    size_t len = 0;
    while (len < 10 * 1024) {
        memcpy(text + len, filler, flen);
        len += flen;
    }
    text[len] = '\0';
    a.text = text;
    a.len = len;
    double t = measure(run_find, &a);
    printf("\n2. keyword matcher, %zu keywords, %zu-byte text without a hit (full scan)\n", n, len);
    printf("   %.1f us per search, %.0f MB/s; automaton %zu bytes\n", t * 1e6,
           (double)len / t / 1e6, voc_kwmatch_memory(a.m));
    bench_keywords_from_lua(text);
    free(text);
    voc_kwmatch_free(a.m);
}

/* From Lua: voc.contains_any(case.normalized, <the same 40 keywords>) ten times per
 * on_event call over a 10 KB normalised text; the guard call is the baseline. */
struct scan_arg {
    struct voc_rules *r;
    json_t *view, *event;
};

static void run_scan(void *p, long i)
{
    (void)i;
    struct scan_arg *a = p;
    json_t *actions = NULL;
    char *err = NULL;
    if (voc_rules_on_event(a->r, a->view, a->event, &actions, &err) != 0) {
        fprintf(stderr, "on_event failed: %s\n", err);
        exit(1);
    }
    json_decref(actions);
}

static void run_scan_baseline(void *p, long i)
{
    (void)i;
    struct scan_arg *a = p;
    char *reason = NULL, *err = NULL;
    voc_rules_guard(a->r, a->view, a->event, &reason, &err);
    free(reason);
    free(err);
}

static void bench_keywords_from_lua(const char *text)
{
    struct voc_diag d;
    voc_diag_init(&d);
    struct scan_arg a = {0};
    if (voc_rules_load(VOC_BENCH_PROFILE, NULL, NULL, NULL, &a.r, &d) != 0) {
        for (size_t i = 0; i < d.count; i++)
            fprintf(stderr, "%s\n", d.messages[i]);
        exit(1);
    }
    voc_diag_free(&d);
    a.view = json_pack("{s:i, s:s, s:s}", "id", 1, "state", "new", "normalized", text);
    a.event = json_pack("{s:s}", "type", "note");
    double scans = measure(run_scan, &a);
    double base = measure(run_scan_baseline, &a);
    printf("   from Lua, voc.contains_any(case.normalized, set): %.1f us per call\n",
           (scans - base) / 10 * 1e6);
    json_decref(a.view);
    json_decref(a.event);
    voc_rules_free(a.r);
}

/* ---- 3. hooks ----------------------------------------------------------------------- */

struct hook_arg {
    struct voc_rules *r;
    json_t *views[SAMPLES];
    json_t *event;
    bool fresh_text; /* make every call's text new, so nothing is remembered */
};

static json_t *make_view(const char *subject, const char *text)
{
    return json_pack(
        "{s:i, s:s, s:s, s:s, s:s, s:s, s:s, s:{s:s, s:s, s:s}, s:{s:s, s:s}, "
        "s:s, s:s, s:s, s:[], s:{s:s}, s:[{s:i, s:s, s:s, s:s, s:n, s:{}}]}",
        "id", 42, "state", "new", "created_at", "2026-11-23T01:15:00.123Z", "external_id",
        "WO-20261123-0042", "channel", "hotline", "source", "customer", "received_at",
        "2026-11-23T01:15:00.000Z", "customer", "name", "张伟", "contact", "13812345678", "region",
        "上海", "product", "name", "智能电饭煲", "model", "RC-50", "subject", subject, "text", text,
        "expected", "更换新机", "attachments", "fields", "工单类型", "投诉", "events", "seq", 1,
        "type", "received", "at", "2026-11-23T01:15:00.123Z", "actor", "hotline", "note", "data");
}

static void run_guard(void *p, long i)
{
    struct hook_arg *a = p;
    char *reason = NULL, *err = NULL;
    voc_rules_guard(a->r, a->views[i % SAMPLES], a->event, &reason, &err);
    free(reason);
    free(err);
}

static void run_classify(void *p, long i)
{
    struct hook_arg *a = p;
    json_t *view = a->views[i % SAMPLES];
    if (a->fresh_text) {
        char text[1024];
        snprintf(text, sizeof text, "%s 编号%ld", samples[i % SAMPLES], i);
        json_object_set_new(view, "text", json_string(text));
    }
    json_t *cls = NULL;
    char *err = NULL;
    if (voc_rules_classify(a->r, view, &cls, &err) != 0) {
        fprintf(stderr, "classify failed: %s\n", err);
        exit(1);
    }
    json_decref(cls);
}

static void bench_hooks(void)
{
    struct voc_diag d;
    voc_diag_init(&d);
    struct hook_arg a = {0};
    if (voc_rules_load(VOC_BENCH_PROFILE, NULL, NULL, NULL, &a.r, &d) != 0) {
        for (size_t i = 0; i < d.count; i++)
            fprintf(stderr, "%s\n", d.messages[i]);
        exit(1);
    }
    voc_diag_free(&d);
    for (size_t i = 0; i < SAMPLES; i++)
        a.views[i] = make_view("客户来电", samples[i]);
    a.event = json_pack("{s:s, s:s}", "type", "acknowledged", "actor", "王芳");

    printf("\n3. hook calls on one core (case view with %zu-byte texts)\n", strlen(samples[0]));
    double t = measure(run_guard, &a);
    printf("   %-52s %9.0f /s  %6.2f us\n", "guard returning true (fixed cost of a call)", 1 / t,
           t * 1e6);
    t = measure(run_classify, &a);
    printf("   %-52s %9.0f /s  %6.2f us\n", "keyword classify, same 6 cases again", 1 / t, t * 1e6);
    a.fresh_text = true;
    t = measure(run_classify, &a);
    printf("   %-52s %9.0f /s  %6.2f us\n", "keyword classify, new text every call", 1 / t,
           t * 1e6);
    a.fresh_text = false;
    struct voc_textnorm *tn = NULL;
    char *err = NULL;
    voc_textnorm_new(&tn, &err);
    for (size_t i = 0; i < SAMPLES; i++) {
        json_decref(a.views[i]);
        a.views[i] = make_view("客户来电", samples[i]);
        char src[1024], *norm = NULL;
        size_t n;
        snprintf(src, sizeof src, "客户来电\n%s", samples[i]);
        voc_normalize(tn, src, strlen(src), &norm, &n);
        json_object_set_new(a.views[i], "normalized", json_string(norm));
        free(norm);
    }
    voc_textnorm_free(tn);
    t = measure(run_classify, &a);
    printf("   %-52s %9.0f /s  %6.2f us\n", "keyword classify, view brings `normalized`", 1 / t,
           t * 1e6);
    printf("   (calls %llu, errors %llu)\n", (unsigned long long)voc_rules_stats(a.r)->calls,
           (unsigned long long)voc_rules_stats(a.r)->errors);
    for (size_t i = 0; i < SAMPLES; i++)
        json_decref(a.views[i]);
    json_decref(a.event);
    voc_rules_free(a.r);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        seconds = atof(argv[1]);
    if (seconds <= 0)
        seconds = 1.0;
    voc_log_set_level(VOC_LOG_WARN);
    bench_normalize();
    bench_keywords();
    bench_hooks();
    return 0;
}
