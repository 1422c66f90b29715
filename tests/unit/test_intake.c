/* The intake record (daemon/intake.[ch]) against docs/api.md "Intake record": defaults,
 * normalisation, and every error code. Records with invalid UTF-8 cannot come out of a JSON
 * parser, but plugins build records by hand, so those are made with jansson's *_nocheck
 * calls. */
#include "intake.h"
#include "timeutil.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOW INT64_C(1795396500123000) /* 2026-11-23T01:15:00.123Z */

static json_t *parse(const char *text)
{
    json_error_t jerr;
    json_t *v = json_loads(text, 0, &jerr);
    ck_assert_msg(v != NULL, "bad JSON in test: %s (%s)", text, jerr.text);
    return v;
}

static json_t *accept_record(json_t *record, const char *default_channel)
{
    json_t *out = NULL;
    struct voc_err err = {0};
    int rc = voc_intake_validate(record, default_channel, NOW, &out, &err);
    ck_assert_msg(rc == 0, "refused: %s %s", err.code, err.message);
    ck_assert_ptr_nonnull(out);
    return out;
}

static json_t *accept_text(const char *text)
{
    json_t *record = parse(text);
    json_t *out = accept_record(record, NULL);
    json_decref(record);
    return out;
}

static void refuse_record(json_t *record, const char *code, const char *in_message)
{
    json_t *out = NULL;
    struct voc_err err = {0};
    int rc = voc_intake_validate(record, NULL, NOW, &out, &err);
    char *dump = json_dumps(record, JSON_COMPACT | JSON_ENSURE_ASCII);
    ck_assert_msg(rc == -1, "accepted: %s", dump);
    ck_assert_ptr_null(out);
    ck_assert_int_eq(err.status, 400);
    ck_assert_msg(err.code && strcmp(err.code, code) == 0, "%s: code %s, want %s (%s)", dump,
                  err.code, code, err.message);
    if (in_message)
        ck_assert_msg(strstr(err.message, in_message) != NULL, "%s: message '%s' lacks '%s'", dump,
                      err.message, in_message);
    free(dump);
}

static void refuse_text(const char *text, const char *code, const char *in_message)
{
    json_t *record = parse(text);
    refuse_record(record, code, in_message);
    json_decref(record);
}

static const char *str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    ck_assert_msg(s != NULL, "'%s' is not a string", key);
    return s;
}

START_TEST(defaults)
{
    json_t *r = accept_text("{\"text\": \"用了三天就不能加热了\"}");
    static const char *const fields[] = {"external_id", "channel",     "source",  "received_at",
                                         "customer",    "product",     "subject", "text",
                                         "expected",    "attachments", "fields"};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        ck_assert_msg(json_object_get(r, fields[i]) != NULL, "'%s' missing", fields[i]);
    ck_assert_uint_eq(json_object_size(r), sizeof fields / sizeof fields[0]);
    ck_assert(json_is_null(json_object_get(r, "external_id")));
    ck_assert_str_eq(str(r, "channel"), "api");
    ck_assert_str_eq(str(r, "source"), "customer");
    ck_assert_str_eq(str(r, "received_at"), "2026-11-23T01:15:00.123Z");
    ck_assert_str_eq(str(r, "subject"), "");
    ck_assert_str_eq(str(r, "expected"), "");
    ck_assert_str_eq(str(r, "text"), "用了三天就不能加热了");
    ck_assert(json_is_object(json_object_get(r, "customer")));
    ck_assert_uint_eq(json_object_size(json_object_get(r, "customer")), 0);
    ck_assert(json_is_object(json_object_get(r, "product")));
    ck_assert(json_is_array(json_object_get(r, "attachments")));
    ck_assert_uint_eq(json_array_size(json_object_get(r, "attachments")), 0);
    ck_assert(json_is_object(json_object_get(r, "fields")));
    json_decref(r);

    /* A channel's default name, unless the record names one; null counts as absent. */
    json_t *in = parse("{\"subject\": \"x\"}");
    r = accept_record(in, "hotline");
    ck_assert_str_eq(str(r, "channel"), "hotline");
    json_decref(r);
    json_decref(in);
    in = parse("{\"subject\": \"x\", \"channel\": \"web\"}");
    r = accept_record(in, "hotline");
    ck_assert_str_eq(str(r, "channel"), "web");
    json_decref(r);
    json_decref(in);
    r = accept_text("{\"subject\": \"x\", \"channel\": null, \"source\": null, \"customer\": null,"
                    " \"product\": null, \"attachments\": null, \"fields\": null, "
                    "\"received_at\": null, \"external_id\": null, \"text\": null}");
    ck_assert_str_eq(str(r, "channel"), "api");
    ck_assert_str_eq(str(r, "source"), "customer");
    ck_assert_str_eq(str(r, "text"), "");
    ck_assert_str_eq(str(r, "received_at"), "2026-11-23T01:15:00.123Z");
    ck_assert(json_is_object(json_object_get(r, "customer")));
    json_decref(r);
}
END_TEST

START_TEST(full_record)
{
    json_t *in = parse(
        "{\"external_id\": \"WO-20261123-0042\", \"channel\": \"hotline\", \"source\": "
        "\"partner\", \"received_at\": \"2026-11-23T09:15:00+08:00\", \"customer\": {\"name\": "
        "\"张伟\", \"contact\": \"13812345678\", \"region\": \"上海\", \"account\": \"C-1001\"}, "
        "\"product\": {\"name\": \"智能电饭煲\", \"model\": \"RC-50\", \"batch\": \"B20261101\"}, "
        "\"subject\": \"电饭煲无法加热\", \"text\": \"指示灯一直闪。\", \"expected\": "
        "\"更换新机\", "
        "\"attachments\": [{\"name\": \"photo.jpg\", \"type\": \"image/jpeg\", \"size\": 123456, "
        "\"sha256\": \"9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08\"}], "
        "\"fields\": {\"工单类型\": \"投诉\", \"nested\": {\"list\": [1, \"二\", null, true]}}}");
    json_t *r = accept_record(in, NULL);
    ck_assert_str_eq(str(r, "external_id"), "WO-20261123-0042");
    ck_assert_str_eq(str(r, "channel"), "hotline");
    ck_assert_str_eq(str(r, "source"), "partner");
    /* +08:00 becomes Z, in milliseconds */
    ck_assert_str_eq(str(r, "received_at"), "2026-11-23T01:15:00.000Z");
    ck_assert_str_eq(str(json_object_get(r, "customer"), "region"), "上海");
    ck_assert_str_eq(str(json_object_get(r, "product"), "batch"), "B20261101");
    ck_assert_str_eq(str(r, "expected"), "更换新机");
    ck_assert_uint_eq(json_array_size(json_object_get(r, "attachments")), 1);
    ck_assert(json_equal(json_object_get(r, "fields"), json_object_get(in, "fields")));
    /* The result is independent of the input: a plugin may free or reuse its record. */
    json_object_set_new(json_object_get(in, "customer"), "name", json_string("changed"));
    json_object_clear(json_object_get(in, "fields"));
    ck_assert_str_eq(str(json_object_get(r, "customer"), "name"), "张伟");
    ck_assert_uint_eq(json_object_size(json_object_get(r, "fields")), 2);
    json_decref(in);
    json_decref(r);

    static const char *const sources[] = {"customer", "employee", "partner"};
    for (int i = 0; i < 3; i++) {
        char text[96];
        snprintf(text, sizeof text, "{\"text\": \"x\", \"source\": \"%s\"}", sources[i]);
        r = accept_text(text);
        ck_assert_str_eq(str(r, "source"), sources[i]);
        json_decref(r);
    }
}
END_TEST

START_TEST(received_at)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"2026-11-23T09:15:00+08:00", "2026-11-23T01:15:00.000Z"},
        {"2026-11-23T01:15:00Z", "2026-11-23T01:15:00.000Z"},
        {"2026-11-23T01:15:00.5Z", "2026-11-23T01:15:00.500Z"},
        {"2026-11-22T20:15:00.123456-05:00", "2026-11-23T01:15:00.123Z"},
        {"2026-01-01T07:00:00+08:00", "2025-12-31T23:00:00.000Z"},
        {"2026-11-23", "2026-11-23T00:00:00.000Z"},
        {"1970-01-01T00:00:00Z", "1970-01-01T00:00:00.000Z"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[160];
        snprintf(text, sizeof text, "{\"text\": \"x\", \"received_at\": \"%s\"}", cases[i].in);
        json_t *r = accept_text(text);
        ck_assert_msg(strcmp(str(r, "received_at"), cases[i].out) == 0, "%s -> %s, want %s",
                      cases[i].in, str(r, "received_at"), cases[i].out);
        json_decref(r);
    }
    refuse_text("{\"text\": \"x\", \"received_at\": \"yesterday\"}", "wrong_type", "received_at");
    refuse_text("{\"text\": \"x\", \"received_at\": \"2026-11-23T09:15:00\"}", "wrong_type",
                "received_at");
    refuse_text("{\"text\": \"x\", \"received_at\": \"2026-02-29T09:15:00Z\"}", "wrong_type",
                "received_at");
    refuse_text("{\"text\": \"x\", \"received_at\": 1795403700}", "wrong_type", "received_at");
    refuse_text("{\"text\": \"x\", \"received_at\": \"1969-12-31T23:59:59Z\"}", "wrong_type",
                "received_at");
}
END_TEST

START_TEST(unknown_fields)
{
    refuse_text("{\"text\": \"x\", \"colour\": \"red\"}", "unknown_field", "colour");
    refuse_text("{\"text\": \"x\", \"customer\": {\"name\": \"张伟\", \"x\": \"1\"}}",
                "unknown_field", "customer.x");
    refuse_text("{\"text\": \"x\", \"product\": {\"colour\": \"red\"}}", "unknown_field",
                "product.colour");
    refuse_text("{\"text\": \"x\", \"attachments\": [{\"name\": \"a\", \"url\": \"http://x\"}]}",
                "unknown_field", "attachments[0].url");
    refuse_text("{\"text\": \"x\", \"attachments\": [{}, {\"nme\": \"a\"}]}", "unknown_field",
                "attachments[1].nme");
    /* Anything goes inside fields. */
    json_decref(
        accept_text("{\"text\": \"x\", \"fields\": {\"colour\": \"red\", \"x\": {\"y\": 1}}}"));
}
END_TEST

START_TEST(wrong_types)
{
    refuse_text("{\"text\": 5}", "wrong_type", "text");
    refuse_text("{\"subject\": [\"x\"]}", "wrong_type", "subject");
    refuse_text("{\"text\": \"x\", \"expected\": {}}", "wrong_type", "expected");
    refuse_text("{\"text\": \"x\", \"external_id\": 42}", "wrong_type", "external_id");
    refuse_text("{\"text\": \"x\", \"external_id\": \"\"}", "wrong_type", "external_id");
    refuse_text("{\"text\": \"x\", \"source\": \"robot\"}", "wrong_type", "source");
    refuse_text("{\"text\": \"x\", \"source\": 1}", "wrong_type", "source");
    refuse_text("{\"text\": \"x\", \"customer\": \"张伟\"}", "wrong_type", "customer");
    refuse_text("{\"text\": \"x\", \"customer\": {\"name\": 5}}", "wrong_type", "customer.name");
    refuse_text("{\"text\": \"x\", \"product\": [1]}", "wrong_type", "product");
    refuse_text("{\"text\": \"x\", \"product\": {\"model\": null}}", "wrong_type", "product.model");
    refuse_text("{\"text\": \"x\", \"attachments\": {}}", "wrong_type", "attachments");
    refuse_text("{\"text\": \"x\", \"attachments\": [\"photo.jpg\"]}", "wrong_type",
                "attachments[0]");
    refuse_text("{\"text\": \"x\", \"fields\": [1, 2]}", "wrong_type", "fields");
    refuse_text("{\"text\": \"x\", \"fields\": \"x\"}", "wrong_type", "fields");

    json_t *arr = json_array();
    refuse_record(arr, "wrong_type", NULL);
    json_decref(arr);

    /* Size limits: external_id 256 bytes, strings 64 KiB, text only the body limit. */
    char *big = malloc(70 * 1024);
    memset(big, 'a', 257);
    big[257] = '\0';
    json_t *r = json_pack("{s:s, s:s}", "text", "x", "external_id", big);
    refuse_record(r, "wrong_type", "external_id");
    json_decref(r);
    big[256] = '\0';
    r = json_pack("{s:s, s:s}", "text", "x", "external_id", big);
    json_decref(accept_record(r, NULL));
    json_decref(r);
    memset(big, 'b', 64 * 1024 + 1);
    big[64 * 1024 + 1] = '\0';
    r = json_pack("{s:s, s:s}", "text", "x", "subject", big);
    refuse_record(r, "wrong_type", "subject");
    json_decref(r);
    r = json_pack("{s:s, s:{s:s}}", "text", "x", "customer", "name", big);
    refuse_record(r, "wrong_type", "customer.name");
    json_decref(r);
    r = json_pack("{s:s}", "text", big);
    json_decref(accept_record(r, NULL));
    json_decref(r);
    big[64 * 1024] = '\0';
    r = json_pack("{s:s, s:s}", "text", "x", "subject", big);
    json_decref(accept_record(r, NULL));
    json_decref(r);
    free(big);
}
END_TEST

START_TEST(missing_text)
{
    refuse_text("{}", "missing_field", NULL);
    refuse_text("{\"subject\": \"\", \"text\": \"\"}", "missing_field", NULL);
    refuse_text("{\"expected\": \"更换新机\", \"customer\": {\"name\": \"张伟\"}}", "missing_field",
                NULL);
    json_decref(accept_text("{\"subject\": \"只有标题\"}"));
    json_decref(accept_text("{\"text\": \"只有正文\"}"));
}
END_TEST

START_TEST(attachments)
{
    static const char *const good[] = {
        "[]",
        "[{\"name\": \"a.jpg\", \"type\": \"image/jpeg\", \"size\": 0, \"sha256\": "
        "\"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\"}]",
        "[{\"name\": \"a.jpg\"}]",
        "[{\"size\": 9007199254740991}]",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char text[400];
        snprintf(text, sizeof text, "{\"text\": \"x\", \"attachments\": %s}", good[i]);
        json_decref(accept_text(text));
    }
    static const char *const bad[] = {
        "[{\"sha256\": \"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85\"}]",
        "[{\"sha256\": \"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b8555\"}]",
        "[{\"sha256\": \"g3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\"}]",
        "[{\"sha256\": \"\"}]",
        "[{\"sha256\": 5}]",
        "[{\"size\": -1}]",
        "[{\"size\": 1.5}]",
        "[{\"size\": \"10\"}]",
        "[{\"name\": 5}]",
        "[{\"type\": [\"image/jpeg\"]}]",
    };
    static const char *const field[] = {"sha256", "sha256", "sha256", "sha256", "sha256",
                                        "size",   "size",   "size",   "name",   "type"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[400], where[64];
        snprintf(text, sizeof text, "{\"text\": \"x\", \"attachments\": %s}", bad[i]);
        snprintf(where, sizeof where, "attachments[0].%s", field[i]);
        refuse_text(text, "wrong_type", where);
    }
    /* At most 1000 attachments. */
    json_t *list = json_array();
    for (int i = 0; i < 1001; i++)
        json_array_append_new(list, json_pack("{s:s}", "name", "a"));
    json_t *r = json_pack("{s:s, s:O}", "text", "x", "attachments", list);
    refuse_record(r, "wrong_type", "attachments");
    json_array_remove(list, 0);
    json_decref(r);
    r = json_pack("{s:s, s:O}", "text", "x", "attachments", list);
    json_decref(accept_record(r, NULL));
    json_decref(r);
    json_decref(list);
}
END_TEST

/* A record with one bad string at `path`, built by hand like a plugin would. */
static json_t *bad_string(const char *bytes, size_t len)
{
    return json_stringn_nocheck(bytes, len);
}

START_TEST(invalid_utf8)
{
    static const struct {
        const char *bytes;
        size_t len;
    } bad[] = {
        {"\xff\xfe", 2},         /* never valid */
        {"abc\xe4\xb8", 5},      /* cut inside 中 */
        {"\xc0\xaf", 2},         /* overlong '/' */
        {"\xed\xa0\x80", 3},     /* a UTF-16 surrogate */
        {"\xf4\x90\x80\x80", 4}, /* above U+10FFFF */
        {"a\0b", 3},             /* NUL inside a string */
        {"\x80", 1},             /* lone continuation byte */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *r = json_object();
        json_object_set_new(r, "text", bad_string(bad[i].bytes, bad[i].len));
        refuse_record(r, "invalid_utf8", "text");
        json_decref(r);

        r = json_pack("{s:s, s:{}}", "text", "ok", "customer");
        json_object_set_new(json_object_get(r, "customer"), "name",
                            bad_string(bad[i].bytes, bad[i].len));
        refuse_record(r, "invalid_utf8", "customer.name");
        json_decref(r);

        r = json_pack("{s:s, s:[{}]}", "text", "ok", "attachments");
        json_object_set_new(json_array_get(json_object_get(r, "attachments"), 0), "name",
                            bad_string(bad[i].bytes, bad[i].len));
        refuse_record(r, "invalid_utf8", "attachments[0].name");
        json_decref(r);

        r = json_pack("{s:s}", "text", "ok");
        json_object_set_new(r, "external_id", bad_string(bad[i].bytes, bad[i].len));
        refuse_record(r, "invalid_utf8", "external_id");
        json_decref(r);

        /* Deep inside fields: an object in an array in an object. */
        r = json_pack("{s:s, s:{s:[i, {s:s}]}}", "text", "ok", "fields", "a", 1, "b", "fine");
        json_t *inner = json_array_get(json_object_get(json_object_get(r, "fields"), "a"), 1);
        json_object_set_new(inner, "c", bad_string(bad[i].bytes, bad[i].len));
        refuse_record(r, "invalid_utf8", NULL);
        json_decref(r);
    }
    /* A bad key inside fields. */
    json_t *r = json_pack("{s:s, s:{}}", "text", "ok", "fields");
    json_object_set_new_nocheck(json_object_get(r, "fields"), "k\xff", json_true());
    refuse_record(r, "invalid_utf8", NULL);
    json_decref(r);
    /* Valid multi-byte text of every length passes. */
    r = json_pack("{s:s}", "text", "é中😀 ok");
    json_decref(accept_record(r, NULL));
    json_decref(r);
}
END_TEST

START_TEST(deep_fields)
{
    json_t *deep = json_string("bottom");
    for (int i = 0; i < 40; i++) {
        json_t *wrap = json_array();
        json_array_append_new(wrap, deep);
        deep = wrap;
    }
    json_t *r = json_pack("{s:s, s:{s:o}}", "text", "ok", "fields", "deep", deep);
    refuse_record(r, "wrong_type", "fields");
    json_decref(r);
}
END_TEST

START_TEST(channel_names)
{
    static const char *const good[] = {
        "api",     "email", "hotline", "web-form",
        "we_chat", "0",     "a1-_z",   "abcdefghijklmnopqrstuvwxyz012345"};
    static const char *const bad[] = {
        "",        "Email", "e mail",    "邮件",
        "a.b",     "a/b",   "hot\tline", "abcdefghijklmnopqrstuvwxyz0123456",
        "web+form"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        ck_assert_msg(voc_channel_name_valid(good[i]), "'%s' is a channel name", good[i]);
        char text[128];
        snprintf(text, sizeof text, "{\"text\": \"x\", \"channel\": \"%s\"}", good[i]);
        json_t *r = accept_text(text);
        ck_assert_str_eq(str(r, "channel"), good[i]);
        json_decref(r);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_msg(!voc_channel_name_valid(bad[i]), "'%s' is not a channel name", bad[i]);
        json_t *r = json_pack("{s:s, s:s}", "text", "x", "channel", bad[i]);
        refuse_record(r, "wrong_type", "channel");
        json_decref(r);
    }
}
END_TEST

static Suite *intake_suite(void)
{
    Suite *s = suite_create("intake");
    TCase *tc = tcase_create("intake");
    tcase_add_test(tc, defaults);
    tcase_add_test(tc, full_record);
    tcase_add_test(tc, received_at);
    tcase_add_test(tc, unknown_fields);
    tcase_add_test(tc, wrong_types);
    tcase_add_test(tc, missing_text);
    tcase_add_test(tc, attachments);
    tcase_add_test(tc, invalid_utf8);
    tcase_add_test(tc, deep_fields);
    tcase_add_test(tc, channel_names);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(intake_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
