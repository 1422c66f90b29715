/* The Aho-Corasick keyword matcher, checked against a plain search on random inputs. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyword_match.h"

static struct voc_kwmatch *compile(const char *const *words, size_t n)
{
    size_t lens[64];
    for (size_t i = 0; i < n; i++)
        lens[i] = strlen(words[i]);
    struct voc_kwmatch *m = NULL;
    char *err = NULL;
    int rc = voc_kwmatch_compile(words, lens, n, &m, &err);
    ck_assert_msg(rc == 0, "compile: %s", err ? err : "?");
    return m;
}

/* -1 when nothing matches. */
static long find(const struct voc_kwmatch *m, const char *text)
{
    size_t index;
    return voc_kwmatch_find(m, text, strlen(text), &index) ? (long)index : -1;
}

START_TEST(test_basic)
{
    const char *const words[] = {"质量问题", "漏水", "异响", "态度差"};
    struct voc_kwmatch *m = compile(words, 4);
    ck_assert_uint_eq(voc_kwmatch_count(m), 4);
    ck_assert_uint_gt(voc_kwmatch_memory(m), 0);
    size_t lens[4];
    for (int i = 0; i < 4; i++)
        lens[i] = strlen(words[i]);
    ck_assert_uint_ge(voc_kwmatch_estimate(words, lens, 4), voc_kwmatch_memory(m));
    ck_assert_int_eq(find(m, "冰箱漏水严重"), 1);
    ck_assert_int_eq(find(m, "电饭煲质量问题"), 0);
    ck_assert_int_eq(find(m, "客服态度差，还有异响"), 3);
    ck_assert_int_eq(find(m, "一切正常"), -1);
    ck_assert_int_eq(find(m, ""), -1);
    /* Half a character never matches: 质量 without 问题. */
    ck_assert_int_eq(find(m, "质量"), -1);
    ck_assert(voc_kwmatch_find(m, "漏水", strlen("漏水"), NULL));
    voc_kwmatch_free(m);
}
END_TEST

START_TEST(test_which_keyword_wins)
{
    /* The match that ends first wins, */
    const char *const a[] = {"abcd", "bc"};
    struct voc_kwmatch *m = compile(a, 2);
    ck_assert_int_eq(find(m, "xabcd"), 1);
    voc_kwmatch_free(m);
    /* and among matches ending at the same byte, the keyword listed first. */
    const char *const b[] = {"he", "she", "his", "hers"};
    m = compile(b, 4);
    ck_assert_int_eq(find(m, "ushers"), 0);
    voc_kwmatch_free(m);
    const char *const c[] = {"she", "he"};
    m = compile(c, 2);
    ck_assert_int_eq(find(m, "ushers"), 0);
    voc_kwmatch_free(m);
    const char *const d[] = {"问题", "质量问题", "问题"};
    m = compile(d, 3);
    ck_assert_int_eq(find(m, "质量问题"), 0);
    voc_kwmatch_free(m);
}
END_TEST

START_TEST(test_edge_cases)
{
    struct voc_kwmatch *m = NULL;
    char *err = NULL;
    ck_assert_int_eq(voc_kwmatch_compile(NULL, NULL, 0, &m, &err), 0);
    ck_assert_int_eq(find(m, "anything"), -1);
    voc_kwmatch_free(m);

    const char *const words[] = {"ok", ""};
    size_t lens[] = {2, 0};
    ck_assert_int_eq(voc_kwmatch_compile(words, lens, 2, &m, &err), -1);
    ck_assert_ptr_null(m);
    ck_assert_str_eq(err, "keyword 2 is empty");
    free(err);
    voc_kwmatch_free(NULL);
}
END_TEST

START_TEST(test_long_text)
{
    const char *const words[] = {"漏水", "异响", "发霉"};
    struct voc_kwmatch *m = compile(words, 3);
    const char *filler = "客户反馈：产品使用正常。";
    size_t flen = strlen(filler);
    char *text = malloc(12 * 1024);
    size_t len = 0;
    while (len + flen < 10 * 1024) {
        memcpy(text + len, filler, flen);
        len += flen;
    }
    text[len] = '\0';
    ck_assert_int_eq(find(m, text), -1);
    strcpy(text + len, "发霉");
    ck_assert_int_eq(find(m, text), 2);
    free(text);
    voc_kwmatch_free(m);
}
END_TEST

/* The plain search the automaton must agree with. */
static long naive(char **words, const size_t *lens, size_t n, const char *text, size_t len)
{
    for (size_t end = 1; end <= len; end++)
        for (size_t k = 0; k < n; k++)
            if (lens[k] <= end && memcmp(text + end - lens[k], words[k], lens[k]) == 0)
                return (long)k;
    return -1;
}

static void random_round(const char *alphabet, size_t alen, size_t max_words)
{
    char *words[16];
    size_t lens[16];
    size_t n = 1 + (size_t)rand() % max_words;
    for (size_t k = 0; k < n; k++) {
        lens[k] = 1 + (size_t)rand() % 4;
        words[k] = malloc(lens[k]);
        for (size_t i = 0; i < lens[k]; i++)
            words[k][i] = alphabet[(size_t)rand() % alen];
    }
    struct voc_kwmatch *m = NULL;
    char *err = NULL;
    ck_assert_int_eq(voc_kwmatch_compile((const char *const *)words, lens, n, &m, &err), 0);
    for (int t = 0; t < 20; t++) {
        char text[64];
        size_t len = (size_t)rand() % sizeof text;
        for (size_t i = 0; i < len; i++)
            text[i] = alphabet[(size_t)rand() % alen];
        size_t index = 0;
        long got = voc_kwmatch_find(m, text, len, &index) ? (long)index : -1;
        ck_assert_int_eq(got, naive(words, lens, n, text, len));
    }
    voc_kwmatch_free(m);
    for (size_t k = 0; k < n; k++)
        free(words[k]);
}

START_TEST(test_agrees_with_plain_search)
{
    srand(20261123);
    for (int round = 0; round < 3000; round++)
        random_round("abc", 3, 8);
}
END_TEST

START_TEST(test_all_byte_values)
{
    /* Keywords using every byte value: no byte is left for the "other bytes" class. */
    char alphabet[256];
    for (int i = 0; i < 256; i++)
        alphabet[i] = (char)i;
    char *words[16];
    size_t lens[16];
    for (size_t k = 0; k < 16; k++) {
        lens[k] = 16;
        words[k] = malloc(16);
        for (size_t i = 0; i < 16; i++)
            words[k][i] = alphabet[k * 16 + i];
    }
    struct voc_kwmatch *m = NULL;
    char *err = NULL;
    ck_assert_int_eq(voc_kwmatch_compile((const char *const *)words, lens, 16, &m, &err), 0);
    size_t index = 99;
    ck_assert(voc_kwmatch_find(m, alphabet + 200, 15, &index) == false);
    ck_assert(voc_kwmatch_find(m, alphabet + 192, 64, &index));
    ck_assert_uint_eq(index, 12);
    voc_kwmatch_free(m);
    for (size_t k = 0; k < 16; k++)
        free(words[k]);
    srand(7);
    for (int round = 0; round < 300; round++)
        random_round(alphabet, 256, 16);
}
END_TEST

static Suite *kwmatch_suite(void)
{
    Suite *s = suite_create("keyword_match");
    TCase *tc = tcase_create("match");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_basic);
    tcase_add_test(tc, test_which_keyword_wins);
    tcase_add_test(tc, test_edge_cases);
    tcase_add_test(tc, test_long_text);
    tcase_add_test(tc, test_agrees_with_plain_search);
    tcase_add_test(tc, test_all_byte_values);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(kwmatch_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
