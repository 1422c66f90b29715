/* The Lua rule engine: loading and validating profiles, running hooks, and containing every
 * kind of misbehaving rule (each bad call is followed by a good one on the same object). */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "diag.h"
#include "log.h"
#include "rules.h"

#define FIXTURES VOC_SOURCE_DIR "/tests/unit/fixtures/rules"
#define LIB_DIR FIXTURES "/lib"

static const char *const calendars[] = {"workdays", NULL};

static struct voc_rules *load_with(const char *file, const struct voc_rules_limits *limits)
{
    struct voc_diag d;
    voc_diag_init(&d);
    struct voc_rules *r = NULL;
    int rc = voc_rules_load(file, LIB_DIR, limits, calendars, &r, &d);
    for (size_t i = 0; i < d.count && rc != 0; i++)
        fprintf(stderr, "diag: %s\n", d.messages[i]);
    ck_assert_int_eq(rc, 0);
    ck_assert_ptr_nonnull(r);
    voc_diag_free(&d);
    return r;
}

static struct voc_rules *load_fixture(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", FIXTURES, name);
    return load_with(path, NULL);
}

/* Load a profile that must fail; returns all diag messages joined by newlines. */
static char *load_failure(const char *name, const struct voc_rules_limits *limits)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", FIXTURES, name);
    struct voc_diag d;
    voc_diag_init(&d);
    struct voc_rules *r = NULL;
    int rc = voc_rules_load(path, LIB_DIR, limits, calendars, &r, &d);
    ck_assert_int_eq(rc, -1);
    ck_assert_ptr_null(r);
    ck_assert_uint_gt(d.errors, 0);
    size_t len = 1;
    for (size_t i = 0; i < d.count; i++)
        len += strlen(d.messages[i]) + 1;
    char *all = calloc(1, len);
    for (size_t i = 0; i < d.count; i++) {
        strcat(all, d.messages[i]);
        strcat(all, "\n");
    }
    voc_diag_free(&d);
    return all;
}

static void assert_contains(const char *haystack, const char *needle)
{
    if (!haystack || !strstr(haystack, needle))
        ck_abort_msg("expected to find\n  %s\nin\n  %s", needle, haystack ? haystack : "(null)");
}

static json_t *make_case(const char *subject, const char *text)
{
    json_t *c = json_pack("{s:i, s:s, s:s, s:s, s:{s:s, s:s}, s:{s:s, s:s}, s:{}, s:[{s:i, "
                          "s:s, s:s, s:{}}]}",
                          "id", 42, "state", "new", "channel", "hotline", "source", "customer",
                          "customer", "name", "张伟", "region", "上海", "product", "name",
                          "智能电饭煲", "model", "RC-50", "fields", "events", "seq", 1, "type",
                          "received", "actor", "hotline", "data");
    if (subject)
        json_object_set_new(c, "subject", json_string(subject));
    if (text)
        json_object_set_new(c, "text", json_string(text));
    return c;
}

static json_t *mode_case(const char *mode)
{
    json_t *c = make_case("规则测试", "模式切换");
    json_object_set_new(json_object_get(c, "fields"), "mode", json_string(mode));
    return c;
}

static const char *str(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

/* ---- a good profile ----------------------------------------------------------------- */

START_TEST(test_load_good_profile)
{
    struct voc_rules *r = load_fixture("good.lua");
    ck_assert_str_eq(voc_rules_name(r), "test-general");
    ck_assert_str_eq(voc_rules_path(r), FIXTURES "/good.lua");
    ck_assert(voc_rules_has_event_type(r, "containment"));
    ck_assert(voc_rules_has_event_type(r, "supplier_notified"));
    ck_assert(!voc_rules_has_event_type(r, "closed"));

    ck_assert_uint_eq(voc_rules_clock_count(r), 3);
    const struct voc_clock_def *c0 = voc_rules_clock(r, 0);
    ck_assert_str_eq(c0->name, "classify");
    ck_assert_str_eq(c0->start, "received");
    ck_assert_str_eq(c0->stop, "classified");
    ck_assert_str_eq(c0->calendar, "24x7");
    ck_assert_double_eq(c0->target_s, 7200);
    ck_assert_double_eq(c0->warn, 0.8);
    ck_assert(!c0->reopen);
    const struct voc_clock_def *c1 = voc_rules_clock(r, 1);
    ck_assert_str_eq(c1->calendar, "workdays");
    ck_assert(c1->target_s < 0);
    const struct voc_clock_def *c2 = voc_rules_clock(r, 2);
    ck_assert(c2->reopen);
    ck_assert_double_eq(c2->target_s, 86400);
    ck_assert_ptr_null(voc_rules_clock(r, 3));

    json_t *want_score = json_loads("{\"late_delivery\": {\"first\": 5, \"again\": 10}, "
                                    "\"weight\": 0.4, \"lines\": [\"交付延迟\", \"质量投诉\"]}",
                                    0, NULL);
    ck_assert(json_equal(voc_rules_score(r), want_score));
    json_decref(want_score);

    json_t *def = voc_rules_default_classification(r);
    json_t *want_def = json_pack("{s:s, s:s, s:s, s:s, s:[], s:i, s:[]}", "kind", "opinion",
                                 "category", "other", "severity", "一般", "department", "客服部",
                                 "collaborators", "priority", 3, "tags");
    ck_assert(json_equal(def, want_def));
    json_decref(def);
    json_decref(want_def);

    /* Load-time self-tests do not count as traffic. */
    ck_assert_uint_eq(voc_rules_stats(r)->calls, 0);
    voc_rules_free(r);
}
END_TEST

START_TEST(test_classify_traditional_and_simplified)
{
    struct voc_rules *r = load_fixture("good.lua");
    json_t *cls = NULL;
    char *err = NULL;

    /* Traditional script, keyword lists in mixed script: both normalised. */
    json_t *c = make_case("電飯煲質量問題", "整批產品都有問題，工廠已經停產");
    ck_assert_int_eq(voc_rules_classify(r, c, &cls, &err), 0);
    ck_assert_ptr_null(err);
    json_t *want = json_pack("{s:s, s:s, s:s, s:s, s:[s, s], s:i, s:[s]}", "kind", "complaint",
                             "category", "产品质量", "severity", "严重", "department", "质量部",
                             "collaborators", "研发部", "生产部", "priority", 1, "tags", "kw:质量");
    ck_assert_msg(json_equal(cls, want), "got %s", json_dumps(cls, 0));
    json_decref(want);
    json_decref(cls);
    json_decref(c);

    /* The same words in Simplified script land in the same place. */
    c = make_case("电饭煲质量问题", "用了三天就坏了");
    ck_assert_int_eq(voc_rules_classify(r, c, &cls, &err), 0);
    ck_assert_str_eq(str(cls, "category"), "产品质量");
    ck_assert_str_eq(str(cls, "severity"), "一般");
    ck_assert_int_eq(json_integer_value(json_object_get(cls, "priority")), 2);
    json_decref(cls);
    json_decref(c);

    /* Missing fields come from the profile's defaults. */
    c = make_case("客服態度差", "打了三次電話都沒人理");
    ck_assert_int_eq(voc_rules_classify(r, c, &cls, &err), 0);
    ck_assert_str_eq(str(cls, "category"), "服务态度");
    ck_assert_str_eq(str(cls, "department"), "客服部");
    ck_assert_str_eq(str(cls, "severity"), "一般");
    json_decref(cls);
    json_decref(c);

    c = make_case(NULL, "非常滿意，感謝你們的師傅");
    ck_assert_int_eq(voc_rules_classify(r, c, &cls, &err), 0);
    ck_assert_str_eq(str(cls, "kind"), "praise");
    ck_assert_int_eq(json_integer_value(json_object_get(cls, "priority")), 4);
    json_decref(cls);
    json_decref(c);

    /* A view that carries its stored `normalized` text is used as is. */
    c = make_case("无关标题", "无关内容");
    json_object_set_new(c, "normalized", json_string("这是质量问题"));
    ck_assert_int_eq(voc_rules_classify(r, c, &cls, &err), 0);
    ck_assert_str_eq(str(cls, "category"), "产品质量");
    json_decref(cls);
    json_decref(c);

    ck_assert_uint_eq(voc_rules_stats(r)->calls, 5);
    ck_assert_uint_eq(voc_rules_stats(r)->errors, 0);
    voc_rules_free(r);
}
END_TEST

static json_t *note_event(bool batch_ok)
{
    return json_pack("{s:i, s:s, s:s, s:{s:b}}", "seq", 2, "type", "note", "actor", "王芳", "data",
                     "batch_ok", batch_ok);
}

START_TEST(test_guard)
{
    struct voc_rules *r = load_fixture("good.lua");
    json_t *c = make_case("电饭煲无法加热", "指示灯一直闪");
    json_t *close = json_pack("{s:s, s:s}", "type", "closed", "actor", "王芳");
    char *reason = NULL, *err = NULL;

    ck_assert_int_eq(voc_rules_guard(r, c, close, &reason, &err), 0);
    ck_assert_str_eq(reason, "结案需要连续两个合格批次");
    ck_assert_ptr_null(err);
    free(reason);

    json_array_append_new(json_object_get(c, "events"), note_event(true));
    json_array_append_new(json_object_get(c, "events"), note_event(true));
    ck_assert_int_eq(voc_rules_guard(r, c, close, &reason, &err), 1);
    ck_assert_ptr_null(reason);

    json_t *ack = json_pack("{s:s}", "type", "acknowledged");
    ck_assert_int_eq(voc_rules_guard(r, c, ack, &reason, &err), 1);
    json_decref(ack);
    json_decref(close);
    json_decref(c);
    voc_rules_free(r);
}
END_TEST

START_TEST(test_on_event_and_on_clock)
{
    struct voc_rules *r = load_fixture("good.lua");
    json_t *c = make_case("冰箱批量漏水", "整批都漏水");
    json_object_set_new(c, "classification",
                        json_pack("{s:s, s:i}", "kind", "complaint", "priority", 1));
    json_t *ev = json_pack("{s:i, s:s, s:s}", "seq", 2, "type", "classified", "actor", "rules");
    json_t *actions = NULL;
    char *err = NULL;
    ck_assert_int_eq(voc_rules_on_event(r, c, ev, &actions, &err), 0);
    json_t *want = json_loads(
        "[{\"event\": \"assigned\", \"data\": {\"department\": \"质量部\", \"collaborators\": "
        "[\"生产部\"]}, \"note\": \"严重质量问题自动分派\"}, {\"tag\": \"escalated\"}, "
        "{\"notify\": \"ops-hook\", \"message\": \"严重投诉: 冰箱批量漏水\"}]",
        0, NULL);
    ck_assert_msg(json_equal(actions, want), "got %s", json_dumps(actions, 0));
    json_decref(want);
    json_decref(actions);
    json_decref(ev);

    /* Nothing returned: an empty list. A profile event with data. */
    ev = json_pack("{s:s}", "type", "acknowledged");
    ck_assert_int_eq(voc_rules_on_event(r, c, ev, &actions, &err), 0);
    ck_assert(json_is_array(actions) && json_array_size(actions) == 0);
    json_decref(actions);
    json_decref(ev);
    ev = json_pack("{s:s}", "type", "planned");
    ck_assert_int_eq(voc_rules_on_event(r, c, ev, &actions, &err), 0);
    want = json_loads("[{\"event\": \"containment\", \"data\": {\"batch\": \"B20261101\", "
                      "\"qty\": 3}}]",
                      0, NULL);
    ck_assert_msg(json_equal(actions, want), "got %s", json_dumps(actions, 0));
    json_decref(want);
    json_decref(actions);
    json_decref(ev);

    json_t *clock =
        json_pack("{s:s, s:i, s:s}", "name", "plan", "target_s", 14400, "status", "breached");
    ck_assert_int_eq(voc_rules_on_clock(r, c, clock, "breached", &actions, &err), 0);
    want = json_loads("[{\"notify\": \"ops-mail\", \"message\": \"plan 超时: 工单 42\"}]", 0, NULL);
    ck_assert_msg(json_equal(actions, want), "got %s", json_dumps(actions, 0));
    json_decref(want);
    json_decref(actions);
    ck_assert_int_eq(voc_rules_on_clock(r, c, clock, "warning", &actions, &err), 0);
    ck_assert_uint_eq(json_array_size(actions), 0);
    json_decref(actions);
    json_decref(clock);

    double target = 0;
    ck_assert_int_eq(voc_rules_clock_target(r, 0, c, &target, &err), 0);
    ck_assert_double_eq(target, 7200);
    ck_assert_int_eq(voc_rules_clock_target(r, 1, c, &target, &err), 0);
    ck_assert_double_eq(target, 4 * 3600);
    json_object_set_new(c, "classification", json_pack("{s:i}", "priority", 3));
    ck_assert_int_eq(voc_rules_clock_target(r, 1, c, &target, &err), 0);
    ck_assert_double_eq(target, 24 * 3600);
    ck_assert_int_eq(voc_rules_clock_target(r, 9, c, &target, &err), -1);
    free(err);
    json_decref(c);
    voc_rules_free(r);
}
END_TEST

/* ---- misbehaving rules -------------------------------------------------------------- */

enum outcome { ERR, INSTR, MEM, ERR_OR_MEM };

static const struct {
    const char *mode;
    const char *message;
    enum outcome outcome;
} bad_rules[] = {
    {"loop", "misbehave.lua:10: instruction limit exceeded", INSTR},
    {"pcall_loop", "instruction limit exceeded", INSTR},
    {"xpcall_loop", "instruction limit exceeded", INSTR},
    {"recursion", "", ERR_OR_MEM},
    {"membomb", "classify: memory limit exceeded", MEM},
    {"grow", "memory limit exceeded", MEM},
    {"pcall_membomb", "memory limit exceeded", MEM},
    {"error", "misbehave.lua:38: 客户数据不完整", ERR},
    {"error_table", "misbehave.lua:39: (error object is a table value)", ERR},
    {"error_nolevel", "misbehave.lua:40: 没有位置信息", ERR},
    {"wrong_type", "classify returned a string (it must return a table)", ERR},
    {"wrong_priority", "priority must be an integer 1..4, not 9", ERR},
    {"wrong_kind", "kind must be complaint, suggestion, praise, inquiry or opinion", ERR},
    {"wrong_tags", "tags must be a list of strings, not a string", ERR},
    {"unknown_field", "unknown field 'categroy'", ERR},
    {"index_nil", "misbehave.lua:46: attempt to index a nil value (field 'supplier')", ERR},
    {"os", "attempt to index a nil value (global 'os')", ERR},
    {"io", "attempt to index a nil value (global 'io')", ERR},
    {"dump", "attempt to call a nil value (field 'dump')", ERR},
    {"binary", "binary chunks are not allowed in profiles", ERR},
    {"binary_text_mode", "attempt to load a binary chunk", ERR},
    {"require_io", "module 'io' is not available in profiles", ERR},
    {"require_escape", "bad module name '..secret'", ERR},
    {"coroutine", "attempt to index a nil value (global 'coroutine')", ERR},
    {"gc", "__gc metamethods are not allowed in profiles", ERR},
};

static void assert_ok_call(struct voc_rules *r)
{
    json_t *c = mode_case("ok");
    json_t *cls = NULL;
    char *err = NULL;
    ck_assert_int_eq(voc_rules_classify(r, c, &cls, &err), 0);
    ck_assert_ptr_null(err);
    ck_assert_str_eq(str(cls, "category"), "咨询");
    json_decref(cls);
    json_decref(c);
}

static void assert_rule_error_defaults(const json_t *cls)
{
    ck_assert_str_eq(str(cls, "kind"), "opinion");
    ck_assert_str_eq(str(cls, "category"), "other");
    ck_assert_int_eq(json_integer_value(json_object_get(cls, "priority")), 3);
    json_t *tags = json_object_get(cls, "tags");
    ck_assert_uint_eq(json_array_size(tags), 1);
    ck_assert_str_eq(json_string_value(json_array_get(tags, 0)), "rule_error");
}

static const struct voc_rules_limits tight = {.max_instructions = 5000000, .max_memory = 16u << 20};

START_TEST(test_bad_rules_are_contained)
{
    struct voc_rules *r = load_with(FIXTURES "/misbehave.lua", &tight);
    struct voc_rules_stats *st = voc_rules_stats(r);
    uint64_t errors = 0, instr = 0, mem = 0;
    assert_ok_call(r);
    for (size_t i = 0; i < sizeof bad_rules / sizeof bad_rules[0]; i++) {
        json_t *c = mode_case(bad_rules[i].mode);
        json_t *cls = NULL;
        char *err = NULL;
        int rc = voc_rules_classify(r, c, &cls, &err);
        ck_assert_msg(rc == -1, "mode %s: rc %d", bad_rules[i].mode, rc);
        ck_assert_ptr_nonnull(err);
        assert_contains(err, bad_rules[i].message);
        /* Every message starts with the file and a line. */
        assert_contains(err, "misbehave.lua:");
        assert_rule_error_defaults(cls);
        switch (bad_rules[i].outcome) {
        case ERR:
            errors++;
            break;
        case INSTR:
            instr++;
            break;
        case MEM:
            mem++;
            break;
        case ERR_OR_MEM:
            ck_assert_msg(strstr(err, "stack overflow") || strstr(err, "memory limit exceeded"),
                          "mode %s: %s", bad_rules[i].mode, err);
            if (strstr(err, "stack overflow"))
                errors++;
            else
                mem++;
            break;
        }
        ck_assert_msg(st->errors == errors && st->instr_limit == instr && st->memory_limit == mem,
                      "mode %s: counters %llu/%llu/%llu", bad_rules[i].mode,
                      (unsigned long long)st->errors, (unsigned long long)st->instr_limit,
                      (unsigned long long)st->memory_limit);
        free(err);
        json_decref(cls);
        json_decref(c);
        /* The same state answers the next call normally. */
        assert_ok_call(r);
    }
    voc_rules_free(r);
}
END_TEST

static const char *classify_category(struct voc_rules *r, const char *mode, json_t **cls)
{
    json_t *c = mode_case(mode);
    char *err = NULL;
    int rc = voc_rules_classify(r, c, cls, &err);
    ck_assert_msg(rc == 0, "mode %s: %s", mode, err ? err : "?");
    json_decref(c);
    return str(*cls, "category");
}

START_TEST(test_no_way_out_of_the_sandbox)
{
    struct voc_rules *r = load_with(FIXTURES "/misbehave.lua", &tight);
    json_t *cls = NULL;
    ck_assert_str_eq(classify_category(r, "env_meta", &cls), "nil,nil,nil,nil,nil,nil,nil,nil");
    json_decref(cls);
    assert_ok_call(r);
    ck_assert_str_eq(classify_category(r, "rawget_G", &cls), "nil,nil,nil,true");
    json_decref(cls);
    ck_assert_str_eq(classify_category(r, "load_env", &cls), "nil,nil");
    json_decref(cls);
    assert_ok_call(r);
    voc_rules_free(r);
}
END_TEST

START_TEST(test_bad_guards_and_actions)
{
    struct voc_rules *r = load_with(FIXTURES "/misbehave.lua", &tight);
    json_t *c = mode_case("ok");
    char *reason = NULL, *err = NULL;
    static const struct {
        const char *type;
        int verdict;
        const char *text;
    } guards[] = {
        {"note", -1, "guard returned a string (it must return true, or false and a reason)"},
        {"message", -1, "the reason must be a string"},
        {"closed", -1, "misbehave.lua:99: guard broke"},
        {"rejected", 0, "refused by the profile's guard"},
        {"assigned", 1, NULL},
    };
    for (size_t i = 0; i < sizeof guards / sizeof guards[0]; i++) {
        json_t *ev = json_pack("{s:s}", "type", guards[i].type);
        int v = voc_rules_guard(r, c, ev, &reason, &err);
        ck_assert_msg(v == guards[i].verdict, "guard %s: %d", guards[i].type, v);
        if (v == 0)
            assert_contains(reason, guards[i].text);
        if (v < 0)
            assert_contains(err, guards[i].text);
        free(reason);
        free(err);
        reason = err = NULL;
        json_decref(ev);
    }

    static const struct {
        const char *type;
        const char *text;
    } actions[] = {
        {"note", "not a list"},
        {"message", "unknown event type 'no_such_type'"},
        {"acknowledged", "'received' events are recorded by vocd only"},
        {"waiting", "notify needs a message string"},
        {"resumed", "unknown key 'colour'"},
        {"verified", "actions[1].data.f: a function cannot be stored"},
        {"replied", "on_event returned a string"},
        {"resolved", "instruction limit exceeded"},
    };
    for (size_t i = 0; i < sizeof actions / sizeof actions[0]; i++) {
        json_t *ev = json_pack("{s:s}", "type", actions[i].type);
        json_t *out = NULL;
        ck_assert_int_eq(voc_rules_on_event(r, c, ev, &out, &err), -1);
        assert_contains(err, actions[i].text);
        assert_contains(err, "misbehave.lua:");
        ck_assert(json_is_array(out) && json_array_size(out) == 0);
        json_decref(out);
        free(err);
        err = NULL;
        json_decref(ev);

        /* Followed by a good call on the same object. */
        ev = json_pack("{s:s}", "type", "planned");
        ck_assert_int_eq(voc_rules_on_event(r, c, ev, &out, &err), 0);
        json_t *want = json_loads("[{\"event\": \"containment\", \"data\": {\"batch\": \"B1\", "
                                  "\"qty\": 3}, \"note\": \"围堵\"}]",
                                  0, NULL);
        ck_assert_msg(json_equal(out, want), "got %s", json_dumps(out, 0));
        json_decref(want);
        json_decref(out);
        json_decref(ev);
    }
    json_decref(c);
    voc_rules_free(r);
}
END_TEST

/* ---- the voc library ---------------------------------------------------------------- */

static void expect_category(struct voc_rules *r, const char *mode, const char *want)
{
    json_t *cls = NULL;
    ck_assert_str_eq(classify_category(r, mode, &cls), want);
    json_decref(cls);
}

static void expect_failure(struct voc_rules *r, const char *mode, const char *text)
{
    json_t *c = mode_case(mode);
    json_t *cls = NULL;
    char *err = NULL;
    ck_assert_int_eq(voc_rules_classify(r, c, &cls, &err), -1);
    assert_contains(err, text);
    assert_contains(err, "voclib.lua:");
    free(err);
    json_decref(cls);
    json_decref(c);
}

START_TEST(test_voc_library)
{
    struct voc_rules *r = load_fixture("voclib.lua");
    expect_category(r, "duration", "45,5400,86400,172800,5400,600");
    expect_failure(r, "duration_bad", "voc.duration: 'soon' is not a duration");
    expect_category(r, "normalize", "abc 质量问题 strasse");
    expect_failure(r, "normalize_bad", "invalid UTF-8");
    expect_category(r, "contains_inline", "態度很差");
    expect_category(r, "contains_inline", "態度很差"); /* found again through the cache */
    expect_category(r, "contains_none", "nil,nil");
    expect_category(r, "contains_long", "漏水");
    expect_category(r, "contains_set", "voc.keywords (2),false,發霉");
    expect_category(r, "contains_growing", "nil,乙方");
    expect_failure(r, "keywords_bad", "keyword 1 is a number, not a string");
    expect_failure(r, "keywords_empty", "keyword 1 is empty");
    /* Refused before the automaton is built, not after. */
    expect_failure(r, "keywords_huge", "memory limit exceeded");
    ck_assert_uint_eq(voc_rules_stats(r)->memory_limit, 1);
    expect_category(r, "contains_set", "voc.keywords (2),false,發霉");
    expect_category(r, "log", "logged");
    expect_category(r, "require_lib", "complaint");
    expect_category(r, "require_std", "true");
    expect_failure(r, "require_missing", "module 'nonexistent_module' not found");

    json_t *c = make_case("冷柜質量問題", NULL);
    json_object_set_new(json_object_get(c, "fields"), "mode", json_string("contains_case"));
    json_t *cls = NULL;
    char *err = NULL;
    ck_assert_int_eq(voc_rules_classify(r, c, &cls, &err), 0);
    ck_assert_str_eq(str(cls, "category"), "质量问题");
    json_decref(cls);
    json_decref(c);
    voc_rules_free(r);
}
END_TEST

/* ---- profiles that must not load ---------------------------------------------------- */

START_TEST(test_load_errors)
{
    char *msg = load_failure("bad_syntax.lua", NULL);
    assert_contains(msg, FIXTURES "/bad_syntax.lua:4:");
    free(msg);

    msg = load_failure("bad_return.lua", NULL);
    assert_contains(msg, "bad_return.lua: the profile must return a table, not a string");
    free(msg);

    msg = load_failure("bad_loop.lua", NULL);
    assert_contains(msg, FIXTURES "/bad_loop.lua:3: instruction limit exceeded");
    free(msg);

    msg = load_failure("bad_require.lua", NULL);
    assert_contains(msg, "bad_require.lua:2: require: module 'io' is not available");
    free(msg);

    msg = load_failure("no_such_profile.lua", NULL);
    assert_contains(msg, "no_such_profile.lua: cannot read the profile");
    free(msg);

    /* A budget too small for even the sandbox: refused, not crashed. */
    struct voc_rules_limits tiny = {.max_memory = 8 * 1024};
    msg = load_failure("good.lua", &tiny);
    assert_contains(msg, "memory");
    free(msg);
}
END_TEST

START_TEST(test_load_reports_every_problem_with_its_line)
{
    char *msg = load_failure("bad_fields.lua", NULL);
#define F FIXTURES "/bad_fields.lua"
    assert_contains(msg, F ":3: unknown profile field 'clasify'");
    assert_contains(msg, F ": the profile needs a name");
    assert_contains(msg, F ":4: guard must be a function, not a string");
    assert_contains(msg, F ":5: event type 'closed' is a core type");
    assert_contains(msg, F ":5: event type 'Bad-Name' is not a valid name");
    assert_contains(msg, F ":5: event type 'containment' is listed twice");
    assert_contains(msg, F ":7: defaults: priority must be an integer 1..4, not 7");
    assert_contains(msg, F ":11: clocks[1] (respond): unknown calendar 'weekends'");
    assert_contains(msg, F ":13: clocks[2] (plan): target 'soon' is not a positive duration");
    assert_contains(msg, F ":14: clocks[3]: a second clock named 'plan'");
    assert_contains(msg, F ":15: clocks[4] (verify): stop event 'checked' is neither");
    assert_contains(msg, F ":16: clocks[4] (verify): warn must be a fraction");
    assert_contains(msg, F ": warning: no classify function");
#undef F
    free(msg);

    msg = load_failure("bad_test.lua", NULL);
    assert_contains(msg, FIXTURES "/bad_test.lua:12: tests[2]: category: expected \"交付及时性\", "
                                  "got \"其他\"");
    assert_contains(msg, "tests[2]: kind: expected \"complaint\", got \"opinion\"");
    ck_assert_ptr_null(strstr(msg, "tests[1]"));
    free(msg);
}
END_TEST

START_TEST(test_unknown_calendar_check_can_be_skipped)
{
    /* Offline tools without a config pass no calendar list. */
    struct voc_diag d;
    voc_diag_init(&d);
    struct voc_rules *r = NULL;
    ck_assert_int_eq(voc_rules_load(FIXTURES "/good.lua", LIB_DIR, NULL, NULL, &r, &d), 0);
    voc_rules_free(r);
    const char *const none[] = {NULL};
    ck_assert_int_eq(voc_rules_load(FIXTURES "/good.lua", LIB_DIR, NULL, none, &r, &d), -1);
    ck_assert_ptr_null(r);
    ck_assert_uint_eq(d.errors, 1);
    assert_contains(d.messages[0], "unknown calendar 'workdays'");
    voc_diag_free(&d);
}
END_TEST

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

/* Lua keeps only the last 60 bytes of a chunk name ("...tail.lua:3:"); messages must still
 * carry the whole path. */
START_TEST(test_long_paths_in_messages)
{
    char dir[512] = "/tmp/voc-rules-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char deep[600];
    snprintf(deep, sizeof deep, "%s/a-rather-long-folder-name-for-profiles", dir);
    ck_assert_int_eq(mkdir(deep, 0700), 0);
    char path[700], broken[700];
    snprintf(path, sizeof path, "%s/company-profile-with-a-long-name.lua", deep);
    snprintf(broken, sizeof broken, "%s/company-profile-with-a-syntax-error.lua", deep);
    ck_assert_uint_gt(strlen(path), 60);
    write_file(path, "return {\n"
                     "  name = \"long\",\n"
                     "  classify = function(case)\n"
                     "    if case.fields.mode == \"error\" then error(\"长路径错误\") end\n"
                     "    while true do end\n"
                     "  end,\n"
                     "}\n");
    write_file(broken, "return {\n  name = \"broken\",,\n}\n");

    struct voc_rules *r = load_with(path, &tight);
    json_t *c = mode_case("error");
    json_t *cls = NULL;
    char *err = NULL;
    ck_assert_int_eq(voc_rules_classify(r, c, &cls, &err), -1);
    char want[800];
    snprintf(want, sizeof want, "%s:4: 长路径错误", path);
    ck_assert_str_eq(err, want);
    free(err);
    json_decref(cls);
    json_decref(c);
    c = mode_case("loop");
    ck_assert_int_eq(voc_rules_classify(r, c, &cls, &err), -1);
    snprintf(want, sizeof want, "%s:5: instruction limit exceeded", path);
    ck_assert_str_eq(err, want);
    free(err);
    json_decref(cls);
    json_decref(c);
    voc_rules_free(r);

    struct voc_diag d;
    voc_diag_init(&d);
    ck_assert_int_eq(voc_rules_load(broken, NULL, NULL, calendars, &r, &d), -1);
    snprintf(want, sizeof want, "%s:2:", broken);
    ck_assert_uint_eq(d.count, 1);
    assert_contains(d.messages[0], want);
    voc_diag_free(&d);

    unlink(path);
    unlink(broken);
    rmdir(deep);
    rmdir(dir);
}
END_TEST

static Suite *rules_suite(void)
{
    Suite *s = suite_create("rules");
    TCase *tc = tcase_create("profile");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_load_good_profile);
    tcase_add_test(tc, test_classify_traditional_and_simplified);
    tcase_add_test(tc, test_guard);
    tcase_add_test(tc, test_on_event_and_on_clock);
    tcase_add_test(tc, test_voc_library);
    tcase_add_test(tc, test_load_errors);
    tcase_add_test(tc, test_load_reports_every_problem_with_its_line);
    tcase_add_test(tc, test_unknown_calendar_check_can_be_skipped);
    tcase_add_test(tc, test_long_paths_in_messages);
    suite_add_tcase(s, tc);
    TCase *bad = tcase_create("misbehaving");
    tcase_set_timeout(bad, 240);
    tcase_add_test(bad, test_bad_rules_are_contained);
    tcase_add_test(bad, test_no_way_out_of_the_sandbox);
    tcase_add_test(bad, test_bad_guards_and_actions);
    suite_add_tcase(s, bad);
    return s;
}

int main(void)
{
    voc_log_set_level(VOC_LOG_WARN);
    SRunner *sr = srunner_create(rules_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
