/* The Lua rule engine: loading and validating profiles, running hooks, and containing every
 * kind of misbehaving rule (each bad call is followed by a good one on the same object). */
#include <check.h>
#include <fcntl.h>
#include <jansson.h>
#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "diag.h"
#include "log.h"
#include "lua_sandbox.h"
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
    {"binary_text_mode", "binary chunks are not allowed in profiles", ERR},
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

/* ---- work done in C, data on its way out, logs ---------------------------------------- */

static double seconds_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Classify with `mode` of limits.lua; must fail with `text` in the message, quickly. */
static void expect_limit(struct voc_rules *r, const char *mode, const char *text)
{
    json_t *c = mode_case(mode);
    json_t *cls = NULL;
    char *err = NULL;
    double t0 = seconds_now();
    int rc = voc_rules_classify(r, c, &cls, &err);
    double took = seconds_now() - t0;
    ck_assert_msg(rc == -1, "mode %s: rc %d", mode, rc);
    assert_contains(err, text);
    assert_contains(err, "limits.lua:");
    assert_rule_error_defaults(cls);
    /* Unguarded, each of these runs for a minute (normalize_loop) to hours; guarded, well
     * under a second (a few under a sanitizer on a busy machine). */
    ck_assert_msg(took < 8.0, "mode %s took %.2f s", mode, took);
    free(err);
    json_decref(cls);
    json_decref(c);
}

/* Run limits.lua's classify for `mode` in a plain Lua state (Lua's own string library, no
 * sandbox): what the guarded functions must agree with. */
static char *plain_lua_category(const char *mode)
{
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    ck_assert_int_eq(luaL_dofile(L, FIXTURES "/limits.lua"), LUA_OK);
    lua_getfield(L, -1, "classify");
    lua_createtable(L, 0, 1);
    lua_createtable(L, 0, 1);
    lua_pushstring(L, mode);
    lua_setfield(L, -2, "mode");
    lua_setfield(L, -2, "fields");
    ck_assert_int_eq(lua_pcall(L, 1, 1, 0), LUA_OK);
    lua_getfield(L, -1, "category");
    char *out = strdup(lua_tostring(L, -1));
    lua_close(L);
    return out;
}

START_TEST(test_c_work_is_budgeted)
{
    struct voc_rules *r = load_fixture("limits.lua");
    struct voc_rules_stats *st = voc_rules_stats(r);
    /* Backtracking patterns on a long text: stopped before they start, and a profile's pcall
     * cannot catch that. */
    expect_limit(r, "find_backtrack",
                 "instruction limit exceeded (string.find: up to 5e+10 matching steps on a text "
                 "of 100000 bytes");
    expect_limit(r, "match_backtrack", "instruction limit exceeded (string.match: up to");
    expect_limit(r, "gmatch_backtrack", "instruction limit exceeded (string.gmatch: up to");
    expect_limit(r, "gsub_backtrack", "instruction limit exceeded (string.gsub: up to");
    expect_limit(r, "pcall_backtrack", "instruction limit exceeded (string.find");
    ck_assert_uint_eq(st->instr_limit, 5);
    /* Special characters on more than 1 MiB: refused outright (an error, not a budget stop). */
    expect_limit(r, "big_subject",
                 "string.match: a pattern with special characters on a text of 3145728 bytes "
                 "(at most 1048576)");
    expect_limit(r, "malformed", "malformed pattern (missing ']')");
    ck_assert_uint_eq(st->errors, 2);
    /* Loops of cheap-looking calls run out of budget like any loop. */
    expect_limit(r, "plain_loop", "instruction limit exceeded");
    expect_limit(r, "rep_loop", "instruction limit exceeded");
    /* voc.normalize: refused beyond 1 MiB, charged by the byte below. */
    expect_limit(r, "normalize_huge", "cannot normalise a text of 1200000 bytes (at most 1048576)");
    expect_limit(r, "normalize_loop", "instruction limit exceeded (voc.normalize)");
    expect_limit(r, "table_move", "instruction limit exceeded (table.move)");
    expect_limit(r, "insert_len", "instruction limit exceeded (table.insert)");

    /* What profiles do every day is not affected, and gives what plain Lua gives. */
    static const char *const same[] = {"everyday", "gmatch_anchor", "table_everyday"};
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
        json_t *cls = NULL;
        char *want = plain_lua_category(same[i]);
        ck_assert_str_eq(classify_category(r, same[i], &cls), want);
        free(want);
        json_decref(cls);
    }
    json_t *cls = NULL;
    ck_assert_str_eq(
        classify_category(r, "everyday", &cls),
        "你好,客户反馈 电饭煲 不加热,1003,1003,20261104001,2500,5,7,123,nil,val,X,17524");
    json_decref(cls);
    ck_assert_str_eq(classify_category(r, "gmatch_anchor", &cls), "2,nil,2");
    json_decref(cls);
    ck_assert_str_eq(classify_category(r, "plain_big", &cls), "3600001,nil");
    json_decref(cls);
    voc_rules_free(r);
}
END_TEST

static json_t *limits_actions(struct voc_rules *r, const char *type, char **err)
{
    json_t *c = mode_case("everyday");
    json_t *ev = json_pack("{s:s}", "type", type);
    json_t *actions = NULL;
    double t0 = seconds_now();
    int rc = voc_rules_on_event(r, c, ev, &actions, err);
    ck_assert_msg(seconds_now() - t0 < 8.0, "%s took too long", type);
    json_decref(ev);
    json_decref(c);
    if (rc != 0) {
        ck_assert(json_is_array(actions) && json_array_size(actions) == 0);
        json_decref(actions);
        return NULL;
    }
    ck_assert_ptr_null(*err);
    return actions;
}

START_TEST(test_action_data_is_bounded)
{
    struct voc_rules *r = load_fixture("limits.lua");
    static const struct {
        const char *type;
        const char *text;
    } bombs[] = {
        /* 2^30 values if the shared table were copied out */
        {"bomb_tree", "actions[1].data.tree"},
        {"bomb_tree", "too much data (at most 100000 values and 1024 KiB of text"},
        /* 64 actions x 10 MiB */
        {"bomb_string", "actions[1].data.blob: too much data"},
        {"bomb_note", "actions[1].note is longer than 64 KiB"},
        {"bomb_message", "actions[1].message is longer than 64 KiB"},
        /* 64 x 20000 bytes: each fine alone, too much together */
        {"shared_too_much", "more than 1024 KiB of text in all actions"},
    };
    for (size_t i = 0; i < sizeof bombs / sizeof bombs[0]; i++) {
        char *err = NULL;
        ck_assert_ptr_null(limits_actions(r, bombs[i].type, &err));
        assert_contains(err, bombs[i].text);
        assert_contains(err, "limits.lua:");
        free(err);
    }
    /* Sharing a string among actions is fine within the limit. */
    char *err = NULL;
    json_t *actions = limits_actions(r, "shared_ok", &err);
    ck_assert_ptr_nonnull(actions);
    ck_assert_uint_eq(json_array_size(actions), 64);
    ck_assert_uint_eq(json_string_length(json_object_get(
                          json_object_get(json_array_get(actions, 63), "data"), "text")),
                      10000);
    json_decref(actions);

    /* A guard's reason is cut (at a character boundary), not copied in full. */
    json_t *c = mode_case("everyday");
    json_t *close = json_pack("{s:s}", "type", "closed");
    char *reason = NULL;
    ck_assert_int_eq(voc_rules_guard(r, c, close, &reason, &err), 0);
    ck_assert_uint_le(strlen(reason), 1024 + 3);
    ck_assert_uint_ge(strlen(reason), 1024 - 6);
    json_t *valid = json_string(reason); /* NULL if the cut split a character */
    ck_assert_ptr_nonnull(valid);
    ck_assert(strncmp(reason, "拒绝拒绝", strlen("拒绝拒绝")) == 0);
    ck_assert_str_eq(reason + strlen(reason) - 3, "...");
    json_decref(valid);
    free(reason);
    json_decref(close);
    json_decref(c);
    voc_rules_free(r);
}
END_TEST

/* stderr (the log) into a temporary file while `fn` runs; returns what was written. */
static char *capture_log(struct voc_rules *r, const char *mode)
{
    char path[] = "/tmp/voc-rules-log-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    voc_log_set_level(VOC_LOG_INFO);
    json_t *cls = NULL;
    const char *category = classify_category(r, mode, &cls);
    ck_assert_str_eq(category, "logged");
    json_decref(cls);
    voc_log_set_level(VOC_LOG_WARN);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    off_t size = lseek(fd, 0, SEEK_END);
    char *text = calloc(1, (size_t)size + 1);
    ck_assert_int_eq(pread(fd, text, (size_t)size, 0), size);
    close(fd);
    unlink(path);
    return text;
}

START_TEST(test_log_flood_is_suppressed)
{
    struct voc_rules *r = load_fixture("limits.lua");
    char *log = capture_log(r, "log_flood");
    int lines = 0, suppressed = 0, held_back = 0;
    size_t bytes = 0;
    for (char *line = strtok(log, "\n"); line; line = strtok(NULL, "\n")) {
        if (strstr(line, "suppressed")) {
            suppressed++;
            assert_contains(line, "limits.lua:73: suppressed ");
            assert_contains(line, " more log lines of this call (at most 32 lines and 8192 "
                                  "bytes per call)");
            held_back = atoi(strstr(line, "suppressed ") + strlen("suppressed "));
            continue;
        }
        assert_contains(line, "INFO rules: " FIXTURES "/limits.lua:73: 第");
        /* Each line is cut at 1 KiB, and says how much was left out. */
        ck_assert_uint_lt(strlen(line), 1024 + 120);
        assert_contains(line, "more bytes]");
        json_t *valid = json_string(line); /* still valid UTF-8 */
        ck_assert_ptr_nonnull(valid);
        json_decref(valid);
        bytes += strlen(line);
        lines++;
    }
    /* 100 prints and a voc.log: about 8 KiB of them written, the rest counted in one line. */
    ck_assert_int_ge(lines, 8);
    ck_assert_uint_lt(bytes, 8192 + 2 * 1100);
    ck_assert_int_eq(suppressed, 1);
    ck_assert_int_eq(lines + held_back, 101);
    free(log);
    voc_rules_free(r);
}
END_TEST

/* ---- bytecode ------------------------------------------------------------------------- */

struct chunk {
    char *bytes;
    size_t len;
};

static int collect_chunk(lua_State *L, const void *p, size_t size, void *ud)
{
    (void)L;
    struct chunk *c = ud;
    c->bytes = realloc(c->bytes, c->len + size);
    ck_assert_ptr_nonnull(c->bytes);
    memcpy(c->bytes + c->len, p, size);
    c->len += size;
    return 0;
}

/* Real bytecode from a plain Lua state (lua_dump, what string.dump and luac produce).
 * Returns a malloc'd buffer and its size. */
static char *make_bytecode(const char *source, size_t *size)
{
    lua_State *L = luaL_newstate();
    ck_assert_int_eq(luaL_loadstring(L, source), LUA_OK);
    struct chunk c = {0};
    ck_assert_int_eq(lua_dump(L, collect_chunk, &c, 0), 0);
    lua_close(L);
    char *out = c.bytes;
    size_t len = c.len;
    *size = len;
    /* It is the real thing: Lua's signature, and a plain state runs it. */
    ck_assert(len > 4 && memcmp(out, LUA_SIGNATURE, 4) == 0);
    L = luaL_newstate();
    ck_assert_int_eq(luaL_loadbufferx(L, out, len, "=check", "b"), LUA_OK);
    lua_close(L);
    return out;
}

static void write_bytes(const char *path, const char *bytes, size_t len)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(bytes, 1, len, f), len);
    fclose(f);
}

START_TEST(test_bytecode_is_refused)
{
    size_t len;
    char *code = make_bytecode("return { name = 'compiled', classify = function() return "
                               "{ category = 'from bytecode' } end }",
                               &len);

    /* load() in the sandbox, in every mode. */
    char *hex = malloc(len * 2 + 1);
    for (size_t i = 0; i < len; i++)
        sprintf(hex + 2 * i, "%02x", (unsigned char)code[i]);
    struct voc_rules *r = load_fixture("bytecode.lua");
    static const char *const modes[] = {NULL, "t", "b", "bt"};
    for (size_t i = 0; i < 2 * sizeof modes / sizeof modes[0]; i++) {
        json_t *c = mode_case("x");
        json_t *fields = json_object_get(c, "fields");
        json_object_set_new(fields, "hex", json_string(hex));
        if (modes[i % 4])
            json_object_set_new(fields, "load_mode", json_string(modes[i % 4]));
        if (i >= 4)
            json_object_set_new(fields, "with_env", json_true());
        json_t *cls = NULL;
        char *err = NULL;
        ck_assert_int_eq(voc_rules_classify(r, c, &cls, &err), 0);
        ck_assert_msg(strcmp(str(cls, "category"), "load: binary chunks are not allowed in "
                                                   "profiles") == 0,
                      "mode %s: %s", modes[i % 4] ? modes[i % 4] : "default", str(cls, "category"));
        json_decref(cls);
        json_decref(c);
    }
    voc_rules_free(r);
    free(hex);

    char dir[] = "/tmp/voc-bytecode-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char profile[300], module[300], requirer[300];

    /* A precompiled profile file. */
    snprintf(profile, sizeof profile, "%s/compiled.lua", dir);
    write_bytes(profile, code, len);
    struct voc_diag d;
    voc_diag_init(&d);
    ck_assert_int_eq(voc_rules_load(profile, NULL, NULL, calendars, &r, &d), -1);
    ck_assert_uint_eq(d.errors, 1);
    assert_contains(d.messages[0], "cannot load");
    assert_contains(d.messages[0], profile);
    assert_contains(d.messages[0], "precompiled Lua (bytecode), which profiles may not use");
    voc_diag_free(&d);

    /* A precompiled module, require'd by a source profile. */
    snprintf(module, sizeof module, "%s/helpers.lua", dir);
    write_bytes(module, code, len);
    snprintf(requirer, sizeof requirer, "%s/requirer.lua", dir);
    write_file(requirer, "-- uses a module\nlocal h = require(\"helpers\")\nreturn { name = "
                         "\"requirer\" }\n");
    voc_diag_init(&d);
    ck_assert_int_eq(voc_rules_load(requirer, NULL, NULL, calendars, &r, &d), -1);
    ck_assert_uint_eq(d.errors, 1);
    char want[700];
    snprintf(want, sizeof want, "%s:2: cannot load %s: it is precompiled Lua", requirer, module);
    assert_contains(d.messages[0], want);
    voc_diag_free(&d);

    unlink(profile);
    unlink(module);
    unlink(requirer);
    rmdir(dir);
    free(code);
}
END_TEST

/* ---- clock targets and on_clock returning the wrong thing ----------------------------- */

START_TEST(test_bad_clock_returns)
{
    struct voc_rules *r = load_with(FIXTURES "/bad_clocks.lua", &tight);
    struct voc_rules_stats *st = voc_rules_stats(r);
    static const struct {
        const char *mode;
        const char *text;
    } targets[] = {
        {"table", "the target of clock 'respond' returned a table (it must return a duration "
                  "like \"24h\")"},
        {"soon", "returned 'soon', which is not a duration (e.g. 2h, 1d)"},
        {"negative", "returned a target of -5 s (it must be positive)"},
        {"zero", "returned a target of 0 s (it must be positive)"},
        {"none", "returned a nil"},
        {"error", "bad_clocks.lua:10: 没有目标"},
        {"loop", "bad_clocks.lua:11: instruction limit exceeded"},
    };
    double target = 0;
    char *err = NULL;
    for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++) {
        json_t *c = mode_case(targets[i].mode);
        ck_assert_msg(voc_rules_clock_target(r, 0, c, &target, &err) == -1, "target %s",
                      targets[i].mode);
        assert_contains(err, targets[i].text);
        assert_contains(err, "bad_clocks.lua:");
        free(err);
        err = NULL;
        json_decref(c);
        c = mode_case("ok");
        ck_assert_int_eq(voc_rules_clock_target(r, 0, c, &target, &err), 0);
        ck_assert_double_eq(target, 7200);
        json_decref(c);
    }
    json_t *c = mode_case("seconds");
    ck_assert_int_eq(voc_rules_clock_target(r, 0, c, &target, &err), 0);
    ck_assert_double_eq(target, 5400);
    json_decref(c);

    static const struct {
        const char *mode;
        const char *text;
    } hooks[] = {
        {"table", "on_clock returned actions[1] as a string (each action is a table)"},
        {"soon", "on_clock returned a string (it must return a list of actions or nothing)"},
        {"negative", "on_clock returned a number (it must return a list of actions or nothing)"},
        {"map", "on_clock returned a table that is not a list"},
        {"unknown_event", "unknown event type 'escalated'"},
        {"error", "bad_clocks.lua:21: 超时处理失败"},
        {"loop", "bad_clocks.lua:22: instruction limit exceeded"},
    };
    json_t *clock =
        json_pack("{s:s, s:i, s:s}", "name", "respond", "target_s", 7200, "status", "breached");
    json_t *actions = NULL;
    uint64_t errors_before = st->errors, instr_before = st->instr_limit;
    for (size_t i = 0; i < sizeof hooks / sizeof hooks[0]; i++) {
        c = mode_case(hooks[i].mode);
        ck_assert_msg(voc_rules_on_clock(r, c, clock, "breached", &actions, &err) == -1,
                      "on_clock %s", hooks[i].mode);
        assert_contains(err, hooks[i].text);
        assert_contains(err, "bad_clocks.lua:");
        ck_assert(json_is_array(actions) && json_array_size(actions) == 0);
        json_decref(actions);
        free(err);
        err = NULL;
        json_decref(c);
        /* The same state answers the next call normally. */
        c = mode_case("ok");
        ck_assert_int_eq(voc_rules_on_clock(r, c, clock, "breached", &actions, &err), 0);
        json_t *want = json_loads("[{\"tag\": \"respond-breached\"}]", 0, NULL);
        ck_assert(json_equal(actions, want));
        json_decref(want);
        json_decref(actions);
        json_decref(c);
    }
    ck_assert_uint_eq(st->errors - errors_before, 6);
    ck_assert_uint_eq(st->instr_limit - instr_before, 1);
    json_decref(clock);
    voc_rules_free(r);
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
    tcase_add_test(bad, test_c_work_is_budgeted);
    tcase_add_test(bad, test_action_data_is_bounded);
    tcase_add_test(bad, test_log_flood_is_suppressed);
    tcase_add_test(bad, test_bytecode_is_refused);
    tcase_add_test(bad, test_bad_clock_returns);
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
