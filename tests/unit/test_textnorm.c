/* Text normalisation: NFKC + case fold + Traditional -> Simplified, its fast paths (which
 * must give exactly what utf8proc + OpenCC give), invalid input, and use from two threads. */
#include <check.h>
#include <opencc/opencc.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "t2s_dict.h"
#include "textnorm.h"

static struct voc_textnorm *tn;

static void setup(void)
{
    char *err = NULL;
    int rc = voc_textnorm_new(&tn, &err);
    ck_assert_msg(rc == 0, "voc_textnorm_new: %s", err ? err : "?");
}

static void teardown(void)
{
    voc_textnorm_free(tn);
    tn = NULL;
}

static char *norm(const char *s, size_t len, size_t *out_len)
{
    char *out = NULL;
    size_t n = 0;
    int rc = voc_normalize(tn, s, len, &out, &n);
    ck_assert_msg(rc == VOC_NORM_OK, "normalize failed: %s", voc_normalize_strerror(rc));
    ck_assert_ptr_nonnull(out);
    ck_assert_uint_eq(strlen(out) <= n, 1);
    if (out_len)
        *out_len = n;
    return out;
}

static void expect(const char *in, const char *want)
{
    char *got = norm(in, strlen(in), NULL);
    ck_assert_str_eq(got, want);
    free(got);
}

/* What voc_normalize must equal: the full utf8proc + OpenCC pipeline, no shortcuts. */
static char *reference(opencc_t cc, const char *in)
{
    utf8proc_uint8_t *folded = NULL;
    utf8proc_ssize_t n =
        utf8proc_map((const utf8proc_uint8_t *)in, (utf8proc_ssize_t)strlen(in), &folded,
                     UTF8PROC_STABLE | UTF8PROC_COMPAT | UTF8PROC_COMPOSE | UTF8PROC_CASEFOLD);
    ck_assert_int_ge(n, 0);
    char *conv = opencc_convert_utf8(cc, (const char *)folded, (size_t)n);
    ck_assert_ptr_nonnull(conv);
    char *out = strdup(conv);
    opencc_convert_utf8_free(conv);
    free(folded);
    return out;
}

static opencc_t open_t2s(void)
{
    opencc_t cc = opencc_open("/usr/share/opencc/t2s.json");
    if (cc == (opencc_t)-1)
        cc = opencc_open(OPENCC_DEFAULT_CONFIG_TRAD_TO_SIMP);
    ck_assert(cc != (opencc_t)-1);
    return cc;
}

START_TEST(test_scripts_and_widths_meet)
{
    expect("質量問題", "质量问题");
    expect("质量问题", "质量问题");
    expect("ＡＢＣ", "abc");
    expect("ABC", "abc");
    expect("電飯煲無法加熱，指示燈一直閃。", "电饭煲无法加热,指示灯一直闪。");
    expect("客服態度很差！", "客服态度很差!");
    expect("Ｑ：產品型號ＲＣ－５０", "q:产品型号rc-50");
    expect("Straße ǅ ﬁ", "strasse dž fi");
    expect("", "");
}
END_TEST

START_TEST(test_nul_bytes_are_kept)
{
    size_t n;
    char *got = norm("AB\0C", 4, &n);
    ck_assert_uint_eq(n, 4);
    ck_assert(memcmp(got, "ab\0c", 4) == 0);
    free(got);
    /* OpenCC alone would stop at the NUL and drop the rest. */
    got = norm("質\0量問題", strlen("質") + 1 + strlen("量問題"), &n);
    const char want[] = "质\0量问题";
    ck_assert_uint_eq(n, sizeof want - 1);
    ck_assert(memcmp(got, want, n) == 0);
    free(got);
}
END_TEST

START_TEST(test_invalid_utf8_is_an_error)
{
    static const char *const bad[] = {
        "\xff",                 /* never valid */
        "abc\x80",              /* lone continuation byte */
        "\xc0\xaf",             /* overlong '/' */
        "\xed\xa0\x80",         /* surrogate U+D800 */
        "\xe8\xb4",             /* truncated */
        "质量\xf4\x90\x80\x80", /* beyond U+10FFFF */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *out = (char *)1;
        size_t n = 7;
        int rc = voc_normalize(tn, bad[i], strlen(bad[i]), &out, &n);
        ck_assert_int_eq(rc, VOC_NORM_INVALID_UTF8);
        ck_assert_ptr_null(out);
        ck_assert_uint_eq(n, 0);
    }
    ck_assert_str_eq(voc_normalize_strerror(VOC_NORM_INVALID_UTF8), "invalid UTF-8");
    ck_assert_str_eq(voc_normalize_strerror(VOC_NORM_OK), "ok");
}
END_TEST

static void put_utf8(char **p, int32_t cp)
{
    *p += utf8proc_encode_char(cp, (utf8proc_uint8_t *)*p);
}

/* The fast path skips OpenCC below U+3400. Check the premise against the installed data:
 * every code point below the bound, alone and next to its neighbours, passes unchanged. */
START_TEST(test_opencc_leaves_everything_below_u3400_alone)
{
    opencc_t cc = open_t2s();
    char *buf = malloc(0x3400 * 4 + 1);
    char *p = buf;
    for (int32_t cp = 1; cp < 0x3400; cp++)
        put_utf8(&p, cp);
    *p = '\0';
    size_t len = (size_t)(p - buf);
    char *conv = opencc_convert_utf8(cc, buf, len);
    ck_assert_ptr_nonnull(conv);
    ck_assert_uint_eq(strlen(conv), len);
    ck_assert(memcmp(conv, buf, len) == 0);
    opencc_convert_utf8_free(conv);
    free(buf);
    opencc_close(cc);
}
END_TEST

START_TEST(test_same_as_the_full_pipeline)
{
    static const char *const corpus[] = {
        "質量問題",
        "质量问题",
        "電腦開機後螢幕一直閃爍，客服說要寄回原廠維修。",
        "用了三天就壞了，要求退貨並賠償損失",
        "冰箱漏水 ＋ 異響 ＝ 差評",
        "乾燥機的乾衣效果不好",
        "他們的後台系統很慢",
        "一目瞭然 重覆 沈默 回覆",
        "Order #A-1001: delivery late",
        "ＶＩＰ客戶投訴：物流太慢😡😡",
        "ｶﾀｶﾅ と ひらがな",
        "한국어 고객 불만",
        "Ünïcödé Ǆ ǆ",
        "①②③ ㈱ ㍻ ﷺ",
        "𠮷野家的牛丼",
        "\t\r\n混合\x01控制符",
        "國際標準ISO/TS 16949:2009要求8D報告",
        "The quick brown fox",
    };
    opencc_t cc = open_t2s();
    for (size_t i = 0; i < sizeof corpus / sizeof corpus[0]; i++) {
        char *want = reference(cc, corpus[i]);
        char *got = norm(corpus[i], strlen(corpus[i]), NULL);
        ck_assert_msg(strcmp(got, want) == 0, "input %s: got %s, want %s", corpus[i], got, want);
        free(got);
        free(want);
    }
    opencc_close(cc);
}
END_TEST

START_TEST(test_long_text)
{
    /* Longer than the scratch buffer a context keeps between calls. */
    const char *unit = "客戶反映產品質量問題，要求儘快處理。";
    size_t unit_len = strlen(unit), reps = 8000;
    char *text = malloc(unit_len * reps + 1);
    for (size_t i = 0; i < reps; i++)
        memcpy(text + i * unit_len, unit, unit_len);
    text[unit_len * reps] = '\0';
    size_t n;
    char *got = norm(text, unit_len * reps, &n);
    opencc_t cc = open_t2s();
    char *want = reference(cc, text);
    ck_assert_uint_eq(n, strlen(want));
    ck_assert(strcmp(got, want) == 0);
    free(want);
    free(got);
    /* The context still works at normal sizes afterwards. */
    expect("質量", "质量");
    opencc_close(cc);
    free(text);
}
END_TEST

struct worker {
    const char *in;
    const char *want;
    int failures;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct voc_textnorm *mine = NULL;
    if (voc_textnorm_new(&mine, NULL) != 0) {
        w->failures = -1;
        return NULL;
    }
    for (int i = 0; i < 2000; i++) {
        char *out = NULL;
        size_t n;
        if (voc_normalize(mine, w->in, strlen(w->in), &out, &n) != VOC_NORM_OK ||
            strcmp(out, w->want) != 0)
            w->failures++;
        free(out);
    }
    voc_textnorm_free(mine);
    return NULL;
}

START_TEST(test_two_threads_with_their_own_contexts)
{
    struct worker a = {"搜尋：質量問題", "搜寻:质量问题", 0};
    struct worker b = {"規則：客服態度差", "规则:客服态度差", 0};
    pthread_t ta, tb;
    ck_assert_int_eq(pthread_create(&ta, NULL, worker_main, &a), 0);
    ck_assert_int_eq(pthread_create(&tb, NULL, worker_main, &b), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    ck_assert_int_eq(a.failures, 0);
    ck_assert_int_eq(b.failures, 0);
}
END_TEST

/* OpenCC runs only on the runs of characters that occur in dictionary keys. Every key of
 * the installed dictionaries, alone and between Simplified text, must come out exactly as
 * the full pipeline gives it: this covers the phrases whose characters do not change on
 * their own (回覆 -> 回复, 沈默 -> 沉默), where a per-character shortcut would be wrong. */
START_TEST(test_key_runs_give_what_opencc_gives)
{
    char **keys = NULL, *err = NULL;
    size_t count = 0;
    int rc = voc_t2s_dict_keys("/usr/share/opencc/t2s.json", &keys, &count, &err);
    ck_assert_msg(rc == 0, "voc_t2s_dict_keys: %s", err ? err : "?");
    ck_assert_uint_gt(count, 1000); /* TSCharacters alone has thousands */
    opencc_t cc = open_t2s();
    static const char *const around[][2] = {{"", ""},
                                            {"客户说", "了。"},
                                            {"ABC ", " 123"},
                                            {"质量问题", "质量问题"},
                                            {"電飯煲", "無法"}};
    bool saw_context_only = false;
    for (size_t i = 0; i < count; i++) {
        for (size_t a = 0; a < sizeof around / sizeof around[0]; a++) {
            char in[512];
            snprintf(in, sizeof in, "%s%s%s", around[a][0], keys[i], around[a][1]);
            char *want = reference(cc, in);
            char *got = norm(in, strlen(in), NULL);
            ck_assert_msg(strcmp(got, want) == 0, "%s: got %s, OpenCC gives %s", in, got, want);
            free(got);
            free(want);
        }
        saw_context_only |= strcmp(keys[i], "回覆") == 0;
    }
    ck_assert_msg(saw_context_only, "回覆 is a t2s phrase key");
    expect("请回覆我", "请回复我");
    expect("沈默的客服", "沉默的客服");
    opencc_close(cc);
    voc_t2s_dict_keys_free(keys, count);
    free(err);
}
END_TEST

START_TEST(test_dict_keys_error)
{
    char **keys = NULL, *err = NULL;
    size_t count = 7;
    ck_assert_int_eq(voc_t2s_dict_keys("/nonexistent/t2s.json", &keys, &count, &err), -1);
    ck_assert_ptr_null(keys);
    ck_assert_uint_eq(count, 0);
    ck_assert_ptr_nonnull(err);
    ck_assert_ptr_nonnull(strstr(err, "/nonexistent/t2s.json"));
    free(err);
}
END_TEST

static Suite *textnorm_suite(void)
{
    Suite *s = suite_create("textnorm");
    TCase *tc = tcase_create("normalize");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_scripts_and_widths_meet);
    tcase_add_test(tc, test_nul_bytes_are_kept);
    tcase_add_test(tc, test_invalid_utf8_is_an_error);
    tcase_add_test(tc, test_opencc_leaves_everything_below_u3400_alone);
    tcase_add_test(tc, test_same_as_the_full_pipeline);
    tcase_add_test(tc, test_long_text);
    tcase_add_test(tc, test_key_runs_give_what_opencc_gives);
    tcase_add_test(tc, test_dict_keys_error);
    tcase_add_test(tc, test_two_threads_with_their_own_contexts);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(textnorm_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
