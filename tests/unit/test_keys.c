/* Composite LMDB keys (daemon/keys.[ch]): byte order must equal numeric order, strings are
 * cut at a UTF-8 boundary, and a key that does not fit says so instead of being truncated
 * silently. Random values come from a fixed-seed generator so a failure reproduces. */
#include "jsonutil.h"
#include "keys.h"

#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* splitmix64: small, good enough, and the same sequence on every machine. */
static uint64_t rng_state;

static uint64_t rng(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Values of every magnitude, not just huge ones: shift a random word right by 0..63. */
static uint64_t rng_any(void)
{
    return rng() >> (rng() % 64);
}

static int sign(int v)
{
    return (v > 0) - (v < 0);
}

static int key_cmp(const struct voc_key *a, const struct voc_key *b)
{
    size_t n = a->len < b->len ? a->len : b->len;
    int c = memcmp(a->buf, b->buf, n);
    if (c)
        return sign(c);
    return a->len < b->len ? -1 : a->len > b->len;
}

START_TEST(u64_byte_order_is_numeric_order)
{
    static const uint64_t edges[] = {0,
                                     1,
                                     0xff,
                                     0x100,
                                     0xffff,
                                     0x10000,
                                     0xffffffffu,
                                     0x100000000ull,
                                     INT64_MAX,
                                     (uint64_t)INT64_MAX + 1,
                                     UINT64_MAX - 1,
                                     UINT64_MAX};
    size_t ne = sizeof edges / sizeof edges[0];
    rng_state = 42;
    for (int i = 0; i < 20000; i++) {
        uint64_t a = i < (int)(ne * ne) ? edges[i / ne] : rng_any();
        uint64_t b = i < (int)(ne * ne) ? edges[i % ne] : rng_any();
        struct voc_key ka, kb;
        voc_key_init(&ka);
        voc_key_init(&kb);
        voc_key_u64(&ka, a);
        voc_key_u64(&kb, b);
        ck_assert_uint_eq(ka.len, 8);
        ck_assert(!ka.overflow);
        int want = a < b ? -1 : a > b;
        ck_assert_msg(key_cmp(&ka, &kb) == want,
                      "u64 %" PRIu64 " vs %" PRIu64 ": byte order %d, numeric order %d", a, b,
                      key_cmp(&ka, &kb), want);
        ck_assert_uint_eq(voc_key_get_u64(ka.buf), a);
    }
}
END_TEST

START_TEST(u32_byte_order_is_numeric_order)
{
    rng_state = 7;
    for (int i = 0; i < 20000; i++) {
        uint32_t a = (uint32_t)(rng_any() >> 32), b = (uint32_t)(rng_any() >> 32);
        if (i == 0) {
            a = 0;
            b = UINT32_MAX;
        }
        struct voc_key ka, kb;
        voc_key_init(&ka);
        voc_key_init(&kb);
        voc_key_u32(&ka, a);
        voc_key_u32(&kb, b);
        ck_assert_uint_eq(ka.len, 4);
        int want = a < b ? -1 : a > b;
        ck_assert_msg(key_cmp(&ka, &kb) == want, "u32 %u vs %u", a, b);
        ck_assert_uint_eq(voc_key_get_u32(ka.buf), a);
    }
}
END_TEST

START_TEST(big_endian_layout)
{
    struct voc_key k;
    voc_key_init(&k);
    voc_key_u64(&k, 0x0102030405060708ull);
    voc_key_u32(&k, 0x0a0b0c0du);
    static const unsigned char want[] = {1, 2, 3, 4, 5, 6, 7, 8, 0x0a, 0x0b, 0x0c, 0x0d};
    ck_assert_uint_eq(k.len, sizeof want);
    ck_assert_mem_eq(k.buf, want, sizeof want);

    unsigned char raw[8];
    voc_key_set_u64(raw, 0xdeadbeefcafef00dull);
    static const unsigned char want_raw[] = {0xde, 0xad, 0xbe, 0xef, 0xca, 0xfe, 0xf0, 0x0d};
    ck_assert_mem_eq(raw, want_raw, 8);
    ck_assert_uint_eq(voc_key_get_u64(raw), 0xdeadbeefcafef00dull);
}
END_TEST

/* (string, u64) keys sort by string first, then number, and "ab" never looks like a prefix
 * of "abc" because of the NUL terminator. */
START_TEST(composite_order_and_prefix)
{
    rng_state = 99;
    static const char *const words[] = {"", "a", "ab", "abc", "b", "质量部", "质量部门", "z"};
    size_t nw = sizeof words / sizeof words[0];
    for (int i = 0; i < 5000; i++) {
        const char *sa = words[rng() % nw], *sb = words[rng() % nw];
        uint64_t na = rng_any(), nb = rng_any();
        struct voc_key ka, kb;
        voc_key_init(&ka);
        voc_key_init(&kb);
        voc_key_str(&ka, sa);
        voc_key_u64(&ka, na);
        voc_key_str(&kb, sb);
        voc_key_u64(&kb, nb);
        int sc = sign(strcmp(sa, sb));
        int want = sc ? sc : (na < nb ? -1 : na > nb);
        ck_assert_msg(key_cmp(&ka, &kb) == want, "(%s,%" PRIu64 ") vs (%s,%" PRIu64 ")", sa, na, sb,
                      nb);
    }
    struct voc_key prefix, abc;
    voc_key_init(&prefix);
    voc_key_str(&prefix, "ab");
    ck_assert_uint_eq(prefix.len, 3);
    ck_assert_mem_eq(prefix.buf, "ab\0", 3);
    voc_key_init(&abc);
    voc_key_str(&abc, "abc");
    voc_key_u64(&abc, 1);
    ck_assert_msg(memcmp(abc.buf, prefix.buf, prefix.len) != 0,
                  "a prefix scan for \"ab\" must not match \"abc\"");
}
END_TEST

START_TEST(short_strings_kept_whole)
{
    struct voc_key k;
    voc_key_init(&k);
    voc_key_str(&k, "");
    ck_assert_uint_eq(k.len, 1);
    ck_assert_int_eq(k.buf[0], 0);
    voc_key_init(&k);
    voc_key_str(&k, "产品质量");
    ck_assert_uint_eq(k.len, strlen("产品质量") + 1);
    ck_assert_str_eq((const char *)k.buf, "产品质量");

    char s[VOC_KEY_STR_MAX + 2];
    memset(s, 'x', VOC_KEY_STR_MAX);
    s[VOC_KEY_STR_MAX] = '\0';
    voc_key_init(&k);
    voc_key_str(&k, s);
    ck_assert_uint_eq(k.len, VOC_KEY_STR_MAX + 1);
    ck_assert_int_eq(k.buf[VOC_KEY_STR_MAX], 0);

    s[VOC_KEY_STR_MAX] = 'y';
    s[VOC_KEY_STR_MAX + 1] = '\0';
    voc_key_init(&k);
    voc_key_str(&k, s);
    ck_assert_uint_eq(k.len, VOC_KEY_STR_MAX + 1);
    ck_assert_int_eq(k.buf[VOC_KEY_STR_MAX - 1], 'x');
    ck_assert_int_eq(k.buf[VOC_KEY_STR_MAX], 0);
}
END_TEST

/* Characters of 2, 3 and 4 bytes, preceded by 0..3 ASCII bytes so that every alignment of a
 * character across byte 400 happens. The cut must be valid UTF-8, a prefix of the string,
 * and as long as possible (less than one character short of 400). */
START_TEST(cut_at_utf8_boundary)
{
    static const char *const chars[] = {"é", "中", "😀"};
    for (size_t c = 0; c < 3; c++) {
        size_t w = strlen(chars[c]);
        for (size_t lead = 0; lead < 4; lead++) {
            char s[1200] = "";
            memset(s, 'a', lead);
            s[lead] = '\0';
            while (strlen(s) < 600)
                strcat(s, chars[c]);
            struct voc_key k;
            voc_key_init(&k);
            voc_key_str(&k, s);
            ck_assert(!k.overflow);
            size_t cut = k.len - 1;
            ck_assert_int_eq(k.buf[cut], 0);
            ck_assert_msg(cut <= VOC_KEY_STR_MAX, "cut %zu > %d", cut, VOC_KEY_STR_MAX);
            ck_assert_msg(cut > VOC_KEY_STR_MAX - w, "cut %zu is shorter than needed (w=%zu)", cut,
                          w);
            ck_assert_mem_eq(k.buf, s, cut);
            ck_assert_msg(voc_utf8_valid((const char *)k.buf, cut),
                          "cut of %zu-byte chars after %zu ASCII bytes is not valid UTF-8", w,
                          lead);
            /* The next byte of the original starts a character. */
            ck_assert_int_ne((unsigned char)s[cut] & 0xc0, 0x80);
        }
    }
}
END_TEST

START_TEST(overflow_flag)
{
    struct voc_key k;
    voc_key_init(&k);
    for (int i = 0; i < VOC_KEY_MAX / 8; i++)
        voc_key_u64(&k, (uint64_t)i);
    ck_assert(!k.overflow);
    ck_assert_uint_eq(k.len, (VOC_KEY_MAX / 8) * 8);
    voc_key_u64(&k, 1); /* 504 + 8 > 511 */
    ck_assert(k.overflow);
    ck_assert_uint_eq(k.len, (VOC_KEY_MAX / 8) * 8);
    /* Once overflowed, even a byte that would fit is refused: the key is unusable. */
    voc_key_bytes(&k, "x", 1);
    ck_assert(k.overflow);
    ck_assert_uint_eq(k.len, (VOC_KEY_MAX / 8) * 8);
    voc_key_init(&k);
    ck_assert(!k.overflow);
    ck_assert_uint_eq(k.len, 0);

    /* Exactly full is fine; one more byte is not. */
    char big[VOC_KEY_STR_MAX + 1];
    memset(big, 'q', VOC_KEY_STR_MAX);
    big[VOC_KEY_STR_MAX] = '\0';
    voc_key_init(&k);
    voc_key_str(&k, big);
    unsigned char pad[VOC_KEY_MAX];
    memset(pad, 1, sizeof pad);
    voc_key_bytes(&k, pad, VOC_KEY_MAX - k.len);
    ck_assert(!k.overflow);
    ck_assert_uint_eq(k.len, VOC_KEY_MAX);
    voc_key_u32(&k, 5);
    ck_assert(k.overflow);
    ck_assert_uint_eq(k.len, VOC_KEY_MAX);

    /* A string that does not fit behind other parts overflows too (no silent cut). */
    voc_key_init(&k);
    voc_key_bytes(&k, pad, 200);
    voc_key_str(&k, big);
    ck_assert(k.overflow);
}
END_TEST

static Suite *keys_suite(void)
{
    Suite *s = suite_create("keys");
    TCase *tc = tcase_create("keys");
    tcase_add_test(tc, u64_byte_order_is_numeric_order);
    tcase_add_test(tc, u32_byte_order_is_numeric_order);
    tcase_add_test(tc, big_endian_layout);
    tcase_add_test(tc, composite_order_and_prefix);
    tcase_add_test(tc, short_strings_kept_whole);
    tcase_add_test(tc, cut_at_utf8_boundary);
    tcase_add_test(tc, overflow_flag);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(keys_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
