/* The webhook channel's payload handling (plugins/webhook/mapping.[ch]): JSON pointers as
 * RFC 6901 defines them, body parsing, the config map's checks, and mapped records that the
 * core's own intake validation (daemon/intake.c) accepts. */
#include "intake.h"
#include "mapping.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *parse(const char *text)
{
    json_error_t jerr;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &jerr);
    ck_assert_msg(v != NULL, "fixture does not parse: %s", jerr.text);
    return v;
}

/* ---- JSON pointer -------------------------------------------------------------------------- */

/* RFC 6901 section 5, verbatim. */
static const char *const rfc_doc =
    "{\"foo\": [\"bar\", \"baz\"], \"\": 0, \"a/b\": 1, \"c%d\": 2, \"e^f\": 3, \"g|h\": 4, "
    "\"i\\\\j\": 5, \"k\\\"l\": 6, \" \": 7, \"m~n\": 8}";

START_TEST(pointer_rfc6901_examples)
{
    json_t *doc = parse(rfc_doc);
    ck_assert_ptr_eq(voc_json_pointer_get(doc, ""), doc);
    ck_assert_ptr_eq(voc_json_pointer_get(doc, "/foo"), json_object_get(doc, "foo"));
    ck_assert_str_eq(json_string_value(voc_json_pointer_get(doc, "/foo/0")), "bar");
    ck_assert_str_eq(json_string_value(voc_json_pointer_get(doc, "/foo/1")), "baz");
    static const struct {
        const char *ptr;
        int value;
    } cases[] = {{"/", 0},     {"/a~1b", 1}, {"/c%d", 2},  {"/e^f", 3}, {"/g|h", 4},
                 {"/i\\j", 5}, {"/k\"l", 6}, {"/ ", 7},    {"/m~0n", 8}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *v = voc_json_pointer_get(doc, cases[i].ptr);
        ck_assert_msg(json_is_integer(v) && json_integer_value(v) == cases[i].value,
                      "pointer '%s'", cases[i].ptr);
    }
    json_decref(doc);
}
END_TEST

START_TEST(pointer_misses)
{
    json_t *doc = parse("{\"foo\": [\"bar\", {\"x\": {\"~1\": true}}], \"s\": \"text\", "
                        "\"~01\": 9}");
    static const char *const misses[] = {
        "/foo/2",  /* past the end */
        "/foo/-",  /* the element after the last: nothing to read */
        "/foo/01", /* leading zero */
        "/foo/+1", "/foo/ 1", "/foo/1x",
        "/s/0",    /* a string has no members */
        "/nope",   "/foo/1/y",
        "foo",     /* not starting with '/' */
        "/m~2n",   /* bad escape */
        "/~",      "/foo/99999999999999999999",
    };
    for (size_t i = 0; i < sizeof misses / sizeof misses[0]; i++)
        ck_assert_msg(voc_json_pointer_get(doc, misses[i]) == NULL, "pointer '%s' should miss",
                      misses[i]);
    /* ~01 is "~1" (decode ~0 first, never re-read), not "/" . */
    ck_assert_int_eq(json_integer_value(voc_json_pointer_get(doc, "/~001")), 9);
    ck_assert_ptr_eq(voc_json_pointer_get(doc, "/foo/1/x/~01"), json_true());
    ck_assert_ptr_null(voc_json_pointer_get(NULL, ""));
    json_decref(doc);
}
END_TEST

START_TEST(pointer_syntax)
{
    ck_assert(voc_json_pointer_valid(""));
    ck_assert(voc_json_pointer_valid("/"));
    ck_assert(voc_json_pointer_valid("/a/~0/~1/0"));
    ck_assert(!voc_json_pointer_valid("a"));
    ck_assert(!voc_json_pointer_valid("/a~"));
    ck_assert(!voc_json_pointer_valid("/a~2"));
    ck_assert(!voc_json_pointer_valid("#/a"));
    ck_assert(!voc_json_pointer_valid(NULL));
}
END_TEST

/* ---- body ---------------------------------------------------------------------------------- */

START_TEST(body_errors)
{
    struct voc_webhook_error err;
    json_t *v = NULL;
    static const char bad_utf8[] = "{\"text\":\"\xe5\x9d\"}";
    ck_assert_int_eq(voc_webhook_parse_body(bad_utf8, strlen(bad_utf8), false, &v, &err), -1);
    ck_assert_str_eq(err.code, "invalid_utf8");
    ck_assert_int_eq(voc_webhook_parse_body("{\"a\":", 5, false, &v, &err), -1);
    ck_assert_str_eq(err.code, "invalid_json");
    ck_assert_ptr_nonnull(strstr(err.message, "line 1"));
    ck_assert_int_eq(voc_webhook_parse_body("", 0, false, &v, &err), -1);
    ck_assert_str_eq(err.code, "invalid_json");
    static const char dup[] = "{\"a\":1,\"a\":2}";
    ck_assert_int_eq(voc_webhook_parse_body(dup, strlen(dup), false, &v, &err), -1);
    ck_assert_str_eq(err.code, "invalid_json");
    ck_assert_int_eq(voc_webhook_parse_body("[1]", 3, false, &v, &err), -1);
    ck_assert_str_eq(err.code, "wrong_type");
    /* A mapped payload may be any JSON document. */
    ck_assert_int_eq(voc_webhook_parse_body("[1]", 3, true, &v, &err), 0);
    ck_assert(json_is_array(v));
    json_decref(v);
    /* A NUL inside a string would be cut off when stored: refused. */
    static const char nul[] = "{\"t\":\"a\\u0000b\"}";
    ck_assert_int_eq(voc_webhook_parse_body(nul, strlen(nul), false, &v, &err), -1);
}
END_TEST

/* ---- map ----------------------------------------------------------------------------------- */

static struct voc_webhook_map *compile(const char *const *pairs, char *err, size_t errlen)
{
    struct voc_kv kv[32];
    size_t n = 0;
    for (; pairs[2 * n]; n++)
        kv[n] = (struct voc_kv){(char *)pairs[2 * n], (char *)pairs[2 * n + 1]};
    struct voc_webhook_map *map = NULL;
    if (voc_webhook_map_compile(kv, n, &map, err, errlen) != 0)
        return NULL;
    return map;
}

static const char *const form_map[] = {"subject",       "/title",     "text",        "/content",
                                       "customer.name", "/user/name", "external_id", "/id",
                                       NULL};

START_TEST(map_the_issue_example)
{
    char err[512];
    struct voc_webhook_map *map = compile(form_map, err, sizeof err);
    ck_assert_msg(map != NULL, "%s", err);
    json_t *payload = parse("{\"id\": 4711, \"title\": \"表单反馈\", \"content\": \"页面打不开\","
                            " \"user\": {\"name\": \"张伟\", \"age\": 30}, \"extra\": 1}");
    json_t *record = NULL;
    struct voc_webhook_error e;
    ck_assert_int_eq(voc_webhook_map_apply(map, payload, &record, &e), 0);
    ck_assert_str_eq(json_string_value(json_object_get(record, "subject")), "表单反馈");
    ck_assert_str_eq(json_string_value(json_object_get(record, "text")), "页面打不开");
    ck_assert_str_eq(
        json_string_value(json_object_get(json_object_get(record, "customer"), "name")), "张伟");
    /* A numeric id becomes its decimal text. */
    ck_assert_str_eq(json_string_value(json_object_get(record, "external_id")), "4711");
    /* Unmapped parts of the payload are not kept. */
    ck_assert_ptr_null(json_object_get(record, "fields"));
    ck_assert_ptr_null(json_object_get(record, "extra"));

    ck_assert_int_eq(voc_webhook_record_finish(record, "webform", NULL, &e), 0);
    /* What the core's intake validation makes of it, exactly as a plugin submission. */
    json_t *intake = NULL;
    struct voc_err verr;
    ck_assert_msg(voc_intake_validate(record, "webhook", 0, &intake, &verr) == 0, "%s",
                  verr.message);
    ck_assert_str_eq(json_string_value(json_object_get(intake, "channel")), "webform");
    ck_assert_str_eq(json_string_value(json_object_get(intake, "external_id")), "4711");
    json_decref(intake);
    json_decref(record);
    json_decref(payload);
    voc_webhook_map_free(map);
}
END_TEST

START_TEST(map_every_target)
{
    static const char *const pairs[] = {
        "external_id",      "/order/id",   "channel",         "/platform",
        "source",           "/who",        "received_at",     "/created",
        "subject",          "/review/title", "text",          "/review/body",
        "expected",         "/wish",       "customer.contact", "/buyer/phone",
        "customer.region",  "/buyer/city", "customer.account", "/buyer/uid",
        "product.name",     "/item/name",  "product.model",   "/item/sku",
        "product.batch",    "/item/lot",   "attachments",     "/files",
        "fields.rating",    "/review/stars", "fields",        "/meta",
        "fields.path~slash", "/a~1b",      NULL};
    char err[512];
    struct voc_webhook_map *map = compile(pairs, err, sizeof err);
    ck_assert_msg(map != NULL, "%s", err);
    json_t *payload = parse(
        "{\"order\": {\"id\": \"T-1\"}, \"platform\": \"review\", \"who\": \"partner\","
        " \"created\": 1763888100, \"review\": {\"title\": \"差评\", \"body\": \"质量太差\","
        " \"stars\": 1}, \"wish\": \"退款\", \"buyer\": {\"phone\": \"13800000000\","
        " \"city\": \"上海\", \"uid\": 99}, \"item\": {\"name\": \"电饭煲\", \"sku\": \"RC-50\","
        " \"lot\": \"B1\"}, \"files\": [], \"meta\": {\"shop\": \"旗舰店\", \"rating\": 5},"
        " \"a/b\": [1, 2]}");
    json_t *record = NULL;
    struct voc_webhook_error e;
    ck_assert_msg(voc_webhook_map_apply(map, payload, &record, &e) == 0, "%s", e.message);
    ck_assert_str_eq(json_string_value(json_object_get(record, "received_at")),
                     "2025-11-23T08:55:00Z");
    json_t *fields = json_object_get(record, "fields");
    /* fields (the whole object) first, then fields.<name> on top of it. */
    ck_assert_str_eq(json_string_value(json_object_get(fields, "shop")), "旗舰店");
    ck_assert_int_eq(json_integer_value(json_object_get(fields, "rating")), 1);
    ck_assert(json_is_array(json_object_get(fields, "path~slash")));
    ck_assert_str_eq(
        json_string_value(json_object_get(json_object_get(record, "customer"), "account")), "99");
    ck_assert_str_eq(
        json_string_value(json_object_get(json_object_get(record, "product"), "model")), "RC-50");
    ck_assert_int_eq(voc_webhook_record_finish(record, "shop", NULL, &e), 0);
    json_t *intake = NULL;
    struct voc_err verr;
    ck_assert_msg(voc_intake_validate(record, "webhook", 0, &intake, &verr) == 0, "%s",
                  verr.message);
    /* The payload named its channel: it wins over the source name. */
    ck_assert_str_eq(json_string_value(json_object_get(intake, "channel")), "review");
    ck_assert_str_eq(json_string_value(json_object_get(intake, "source")), "partner");
    ck_assert_str_eq(json_string_value(json_object_get(intake, "received_at")),
                     "2025-11-23T08:55:00.000Z");
    json_decref(intake);
    json_decref(record);
    json_decref(payload);
    voc_webhook_map_free(map);
}
END_TEST

START_TEST(map_whole_payload_into_fields)
{
    static const char *const pairs[] = {"text", "/msg", "fields.payload", "", NULL};
    char err[512];
    struct voc_webhook_map *map = compile(pairs, err, sizeof err);
    ck_assert_msg(map != NULL, "%s", err);
    json_t *payload = parse("{\"msg\": \"你好\", \"from\": {\"openid\": \"o-1\"}}");
    json_t *record = NULL;
    struct voc_webhook_error e;
    ck_assert_int_eq(voc_webhook_map_apply(map, payload, &record, &e), 0);
    ck_assert(json_equal(json_object_get(json_object_get(record, "fields"), "payload"), payload));
    json_decref(record);
    json_decref(payload);
    voc_webhook_map_free(map);
}
END_TEST

START_TEST(map_wrong_types_and_missing_text)
{
    char err[512];
    struct voc_webhook_map *map = compile(form_map, err, sizeof err);
    ck_assert_ptr_nonnull(map);
    static const struct {
        const char *payload, *code, *needle;
    } cases[] = {
        {"{\"content\": true}", "wrong_type", "'/content' (mapped to 'text') must be a string"},
        {"{\"content\": \"x\", \"user\": {\"name\": [\"a\"]}}", "wrong_type", "/user/name"},
        {"{\"content\": \"x\", \"id\": 1.5}", "wrong_type", "'external_id'"},
        {"{\"content\": \"x\", \"id\": {}}", "wrong_type", "an object"},
        {"{\"other\": \"x\"}", "missing_field", "'/content' or '/title'"},
        {"{\"content\": \"\", \"title\": null}", "missing_field", "'text' or 'subject'"},
        {"[]", "missing_field", "'text' or 'subject'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *payload = parse(cases[i].payload);
        json_t *record = NULL;
        struct voc_webhook_error e = {0};
        ck_assert_int_eq(voc_webhook_map_apply(map, payload, &record, &e), -1);
        ck_assert_str_eq(e.code, cases[i].code);
        ck_assert_msg(strstr(e.message, cases[i].needle) != NULL, "'%s' lacks '%s'", e.message,
                      cases[i].needle);
        json_decref(payload);
    }
    /* null is "not there": the field is left out, not an error. */
    json_t *payload = parse("{\"content\": \"x\", \"id\": null, \"user\": null}");
    json_t *record = NULL;
    struct voc_webhook_error e;
    ck_assert_int_eq(voc_webhook_map_apply(map, payload, &record, &e), 0);
    ck_assert_ptr_null(json_object_get(record, "external_id"));
    ck_assert_ptr_null(json_object_get(record, "customer"));
    json_decref(record);
    json_decref(payload);
    voc_webhook_map_free(map);

    static const char *const time_map[] = {"text", "/t", "received_at", "/at", NULL};
    map = compile(time_map, err, sizeof err);
    ck_assert_ptr_nonnull(map);
    payload = parse("{\"t\": \"x\", \"at\": -5}");
    ck_assert_int_eq(voc_webhook_map_apply(map, payload, &record, &e), -1);
    ck_assert_str_eq(e.code, "wrong_type");
    json_decref(payload);
    payload = parse("{\"t\": \"x\", \"at\": false}");
    ck_assert_int_eq(voc_webhook_map_apply(map, payload, &record, &e), -1);
    json_decref(payload);
    voc_webhook_map_free(map);
}
END_TEST

START_TEST(map_config_errors)
{
    static const struct {
        const char *pairs[7];
        const char *needle;
    } cases[] = {
        {{"text", "/a", "customer.nmae", "/b", NULL}, "'customer.nmae' is not an intake field"},
        {{"text", "/a", "colour", "/b", NULL}, "'colour' is not an intake field"},
        {{"text", "/a", "fields.", "/b", NULL}, "'fields.' is not an intake field"},
        {{"text", "/a", "customer", "/b", NULL}, "'customer' is not an intake field"},
        {{"text", "a", NULL}, "'a' is not a JSON pointer"},
        {{"text", "/a~2", NULL}, "is not a JSON pointer"},
        {{"text", "/a", "text", "/b", NULL}, "mapped twice"},
        {{"customer.name", "/a", NULL}, "'text' or 'subject'"},
        {{NULL}, "'text' or 'subject'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[512] = "";
        ck_assert_ptr_null(compile(cases[i].pairs, err, sizeof err));
        ck_assert_msg(strstr(err, cases[i].needle) != NULL, "'%s' lacks '%s'", err,
                      cases[i].needle);
    }
}
END_TEST

/* ---- defaults ------------------------------------------------------------------------------ */

START_TEST(finish_channel_and_idempotency_key)
{
    struct voc_webhook_error e;
    json_t *r = parse("{\"text\": \"x\"}");
    ck_assert_int_eq(voc_webhook_record_finish(r, "webform", "form-42", &e), 0);
    ck_assert_str_eq(json_string_value(json_object_get(r, "channel")), "webform");
    ck_assert_str_eq(json_string_value(json_object_get(r, "external_id")), "form-42");
    json_decref(r);

    /* What the record says wins over both defaults. */
    r = parse("{\"text\": \"x\", \"channel\": \"wechat\", \"external_id\": \"m-1\"}");
    ck_assert_int_eq(voc_webhook_record_finish(r, "webform", "form-42", &e), 0);
    ck_assert_str_eq(json_string_value(json_object_get(r, "channel")), "wechat");
    ck_assert_str_eq(json_string_value(json_object_get(r, "external_id")), "m-1");
    json_decref(r);

    r = parse("{\"text\": \"x\", \"channel\": null}");
    ck_assert_int_eq(voc_webhook_record_finish(r, "webform", NULL, &e), 0);
    ck_assert_str_eq(json_string_value(json_object_get(r, "channel")), "webform");
    ck_assert_ptr_null(json_object_get(r, "external_id"));

    ck_assert_int_eq(voc_webhook_record_finish(r, "webform", "", &e), -1);
    ck_assert_str_eq(e.code, "wrong_type");
    char long_key[300];
    memset(long_key, 'k', sizeof long_key - 1);
    long_key[sizeof long_key - 1] = '\0';
    ck_assert_int_eq(voc_webhook_record_finish(r, "webform", long_key, &e), -1);
    ck_assert_str_eq(e.code, "wrong_type");
    long_key[256] = '\0';
    ck_assert_int_eq(voc_webhook_record_finish(r, "webform", "\xff\xfe", &e), -1);
    ck_assert_str_eq(e.code, "invalid_utf8");
    ck_assert_int_eq(voc_webhook_record_finish(r, "webform", long_key, &e), 0);
    ck_assert_uint_eq(json_string_length(json_object_get(r, "external_id")), 256);
    json_decref(r);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("webhook_mapping");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, pointer_rfc6901_examples);
    tcase_add_test(tc, pointer_misses);
    tcase_add_test(tc, pointer_syntax);
    tcase_add_test(tc, body_errors);
    tcase_add_test(tc, map_the_issue_example);
    tcase_add_test(tc, map_every_target);
    tcase_add_test(tc, map_whole_payload_into_fields);
    tcase_add_test(tc, map_wrong_types_and_missing_text);
    tcase_add_test(tc, map_config_errors);
    tcase_add_test(tc, finish_channel_and_idempotency_key);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
