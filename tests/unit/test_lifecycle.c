/* The case lifecycle (daemon/lifecycle.[ch]) against the table in docs/api.md "Lifecycle".
 * The expected table below is transcribed from the document, not from lifecycle.c, and
 * every event type is tried in every state. */
#include "lifecycle.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the documented table ------------------------------------------------------------- */

#define OPEN "new classified assigned planned resolved verified replied revisited reopened waiting"
#define ALL OPEN " closed rejected duplicate"

struct doc_row {
    const char *type;
    bool profile;        /* declared by the profile */
    const char *allowed; /* space-separated states */
    const char *next;    /* a state, "=" unchanged, "<" the state before waiting,
                            "classified|=" classified when new else unchanged */
};

static const struct doc_row doc_table[] = {
    {"classified", false, OPEN, "classified|="},
    {"assigned", false, "new classified assigned planned reopened", "assigned"},
    {"acknowledged", false, OPEN, "="},
    {"planned", false, "assigned planned reopened", "planned"},
    {"resolved", false, "assigned planned reopened", "resolved"},
    {"verified", false, "resolved", "verified"},
    {"replied", false, "resolved verified replied", "replied"},
    {"revisited", false, "replied revisited", "revisited"},
    {"closed", false, "resolved verified replied revisited", "closed"},
    {"reopened", false, "resolved verified replied revisited closed rejected", "reopened"},
    {"rejected", false, "new classified assigned planned reopened waiting", "rejected"},
    {"duplicate", false, OPEN, "duplicate"},
    {"waiting", false, "classified assigned planned resolved verified replied revisited reopened",
     "waiting"},
    {"resumed", false, "waiting", "<"},
    {"note", false, ALL, "="},
    {"message", false, ALL, "="},
    /* profile events: any open state, unchanged */
    {"containment", true, OPEN, "="},
    {"eight_d_submitted", true, OPEN, "="},
    /* received is recorded at creation only */
    {"received", false, "", "="},
    /* neither core nor declared */
    {"frobnicated", false, "", "="},
    /* recorded by vocd itself (SLA clocks run on cases in any state), never change state */
    {"clock_warning", false, ALL, "="},
    {"clock_breached", false, ALL, "="},
};

/* "While waiting, only resumed, note, message, acknowledged, classified, rejected,
 * duplicate and profile events are allowed." */
static const char *const doc_allowed_while_waiting[] = {
    "resumed",  "note",      "message",       "acknowledged",   "classified",
    "rejected", "duplicate", "clock_warning", "clock_breached", NULL};

static bool word_in(const char *list, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = list; (p = strstr(p, word)) != NULL; p += n) {
        bool start = p == list || p[-1] == ' ';
        bool end = p[n] == '\0' || p[n] == ' ';
        if (start && end)
            return true;
    }
    return false;
}

static bool in_array(const char *const *list, const char *word)
{
    for (int i = 0; list[i]; i++)
        if (strcmp(list[i], word) == 0)
            return true;
    return false;
}

static enum voc_state state_of(const char *name)
{
    enum voc_state s;
    ck_assert_msg(voc_state_parse(name, &s) == 0, "unknown state '%s'", name);
    return s;
}

START_TEST(transition_table)
{
    size_t rows = sizeof doc_table / sizeof doc_table[0];
    int checked = 0;
    for (size_t r = 0; r < rows; r++) {
        const struct doc_row *row = &doc_table[r];
        for (int st = 0; st < VOC_STATE_COUNT; st++) {
            const char *sname = voc_state_name((enum voc_state)st);
            /* For waiting, try every state it can be entered from as the one before. */
            for (int bw = 0; bw < VOC_STATE_COUNT; bw++) {
                if (st != VOC_STATE_WAITING && bw > 0)
                    break;
                if (st == VOC_STATE_WAITING &&
                    !word_in(doc_table[12].allowed, voc_state_name((enum voc_state)bw)))
                    continue;
                struct voc_case_state now = {(enum voc_state)st, (enum voc_state)bw};
                bool want_ok = word_in(row->allowed, sname);
                if (st == VOC_STATE_WAITING && !row->profile &&
                    !in_array(doc_allowed_while_waiting, row->type))
                    want_ok = false;
                enum voc_state want_next = now.state;
                if (strcmp(row->next, "<") == 0)
                    want_next = now.before_wait;
                else if (strcmp(row->next, "classified|=") == 0)
                    want_next = st == VOC_STATE_NEW ? VOC_STATE_CLASSIFIED : now.state;
                else if (strcmp(row->next, "=") != 0)
                    want_next = state_of(row->next);

                struct voc_case_state next = {VOC_STATE_COUNT, VOC_STATE_COUNT};
                char reason[400] = "";
                int rc = voc_lifecycle_apply(&now, row->type, row->profile, &next, reason,
                                             sizeof reason);
                ck_assert_msg((rc == 0) == want_ok,
                              "'%s' in '%s' (before wait '%s'): got %s, "
                              "docs say %s (%s)",
                              row->type, sname, voc_state_name(now.before_wait),
                              rc == 0 ? "allowed" : "refused", want_ok ? "allowed" : "refused",
                              reason);
                if (rc == 0) {
                    ck_assert_msg(next.state == want_next, "'%s' in '%s': next '%s', want '%s'",
                                  row->type, sname, voc_state_name(next.state),
                                  voc_state_name(want_next));
                    if (next.state == VOC_STATE_WAITING && st == VOC_STATE_WAITING)
                        ck_assert_msg(next.before_wait == now.before_wait,
                                      "'%s' while waiting forgot the state before waiting",
                                      row->type);
                } else {
                    ck_assert_msg(reason[0] != '\0', "'%s' in '%s' refused without a reason",
                                  row->type, sname);
                    ck_assert_msg(strstr(reason, row->type) != NULL,
                                  "the reason does not name the event: %s", reason);
                }
                checked++;
            }
        }
    }
    ck_assert_int_gt(checked, (int)rows * VOC_STATE_COUNT);
}
END_TEST

/* waiting remembers where it came from and resumed goes back there, through any number of
 * events that are allowed while waiting. */
START_TEST(waiting_and_resumed)
{
    static const char *const from[] = {"classified", "assigned", "planned",   "resolved",
                                       "verified",   "replied",  "revisited", "reopened"};
    for (size_t i = 0; i < sizeof from / sizeof from[0]; i++) {
        struct voc_case_state s = {state_of(from[i]), VOC_STATE_NEW}, n;
        char reason[256];
        ck_assert_int_eq(voc_lifecycle_apply(&s, "waiting", false, &n, reason, sizeof reason), 0);
        ck_assert_int_eq(n.state, VOC_STATE_WAITING);
        ck_assert_int_eq(n.before_wait, state_of(from[i]));
        s = n;
        static const char *const meanwhile[] = {"note", "message", "acknowledged", "classified"};
        for (size_t m = 0; m < 4; m++) {
            ck_assert_int_eq(
                voc_lifecycle_apply(&s, meanwhile[m], false, &n, reason, sizeof reason), 0);
            s = n;
        }
        ck_assert_int_eq(voc_lifecycle_apply(&s, "containment", true, &n, reason, sizeof reason),
                         0);
        s = n;
        ck_assert_int_eq(voc_lifecycle_apply(&s, "waiting", false, &n, reason, sizeof reason), -1);
        ck_assert_int_eq(voc_lifecycle_apply(&s, "resumed", false, &n, reason, sizeof reason), 0);
        ck_assert_int_eq(n.state, state_of(from[i]));
    }
    struct voc_case_state s = {VOC_STATE_NEW, VOC_STATE_NEW}, n;
    char reason[256];
    ck_assert_int_eq(voc_lifecycle_apply(&s, "waiting", false, &n, reason, sizeof reason), -1);
    ck_assert_int_eq(voc_lifecycle_apply(&s, "resumed", false, &n, reason, sizeof reason), -1);
    /* Refused while waiting with a hint to resume first. */
    s = (struct voc_case_state){VOC_STATE_WAITING, VOC_STATE_ASSIGNED};
    ck_assert_int_eq(voc_lifecycle_apply(&s, "resolved", false, &n, reason, sizeof reason), -1);
    ck_assert_int_eq(n.state, VOC_STATE_WAITING); /* *next is the unchanged state */
}
END_TEST

START_TEST(states_and_types)
{
    for (int i = 0; i < VOC_STATE_COUNT; i++) {
        enum voc_state back;
        const char *name = voc_state_name((enum voc_state)i);
        ck_assert_int_eq(voc_state_parse(name, &back), 0);
        ck_assert_int_eq(back, i);
        bool closed = i == VOC_STATE_CLOSED || i == VOC_STATE_REJECTED || i == VOC_STATE_DUPLICATE;
        ck_assert_msg(voc_state_is_open((enum voc_state)i) == !closed, "%s open?", name);
    }
    enum voc_state s;
    ck_assert_int_eq(voc_state_parse("Closed", &s), -1);
    ck_assert_int_eq(voc_state_parse("", &s), -1);
    ck_assert_str_eq(voc_state_name(VOC_STATE_COUNT), "?");

    static const char *const core[] = {
        "received",  "classified", "assigned",  "acknowledged", "planned",  "resolved",
        "verified",  "replied",    "revisited", "closed",       "reopened", "rejected",
        "duplicate", "waiting",    "resumed",   "note",         "message"};
    for (size_t i = 0; i < sizeof core / sizeof core[0]; i++)
        ck_assert_msg(voc_event_type_is_core(core[i]), "%s is a core type", core[i]);
    ck_assert(!voc_event_type_is_core("containment"));
    ck_assert(voc_event_type_is_system("received"));
    ck_assert(voc_event_type_is_system("clock_warning"));
    ck_assert(voc_event_type_is_system("clock_breached"));
    ck_assert(!voc_event_type_is_system("note"));

    /* ^[a-z][a-z0-9_]{0,31}$ (lifecycle.h) */
    ck_assert(voc_event_type_name_valid("a"));
    ck_assert(voc_event_type_name_valid("containment"));
    ck_assert(voc_event_type_name_valid("step_2_done"));
    ck_assert(voc_event_type_name_valid("abcdefghijklmnopqrstuvwxyz012345"));   /* 32 */
    ck_assert(!voc_event_type_name_valid("abcdefghijklmnopqrstuvwxyz0123456")); /* 33 */
    ck_assert(!voc_event_type_name_valid(""));
    ck_assert(!voc_event_type_name_valid("_x"));
    ck_assert(!voc_event_type_name_valid("Assigned"));
    ck_assert(!voc_event_type_name_valid("as-signed"));
    ck_assert(!voc_event_type_name_valid("a b"));
    ck_assert(!voc_event_type_name_valid("处理"));
}
END_TEST

/* ---- voc_event_validate ---------------------------------------------------------------- */

static bool profile_types(const char *type, void *arg)
{
    ck_assert_ptr_eq(arg, (void *)profile_types);
    return strcmp(type, "containment") == 0;
}

static json_t *parse(const char *text)
{
    json_error_t jerr;
    json_t *v = json_loads(text, 0, &jerr);
    ck_assert_msg(v != NULL, "bad JSON in test: %s (%s)", text, jerr.text);
    return v;
}

static json_t *valid(const char *text)
{
    json_t *body = parse(text);
    json_t *out = NULL;
    struct voc_err err = {0};
    int rc = voc_event_validate(body, profile_types, (void *)profile_types, &out, &err);
    ck_assert_msg(rc == 0, "%s refused: %s %s", text, err.code, err.message);
    ck_assert_ptr_nonnull(out);
    json_decref(body);
    return out;
}

static void invalid(const char *text, const char *code, const char *in_message)
{
    json_t *body = parse(text);
    json_t *out = NULL;
    struct voc_err err = {0};
    int rc = voc_event_validate(body, profile_types, (void *)profile_types, &out, &err);
    ck_assert_msg(rc == -1, "%s accepted", text);
    ck_assert_ptr_null(out);
    ck_assert_int_eq(err.status, 400);
    /* code NULL: a value that is present but impossible; docs/api.md would call that
     * wrong_type, the validator says missing_field — either is a 400 naming the field. */
    ck_assert_msg(err.code && (code ? strcmp(err.code, code) == 0
                                    : (strcmp(err.code, "wrong_type") == 0 ||
                                       strcmp(err.code, "missing_field") == 0)),
                  "%s: code %s, want %s (%s)", text, err.code, code ? code : "a 400 code",
                  err.message);
    if (in_message)
        ck_assert_msg(strstr(err.message, in_message) != NULL, "%s: message '%s' lacks '%s'", text,
                      err.message, in_message);
    json_decref(body);
}

START_TEST(event_shape)
{
    invalid("{\"type\": \"note\", \"colour\": \"red\"}", "unknown_field", "colour");
    invalid("{\"actor\": \"王芳\"}", "missing_field", "type");
    invalid("{}", "missing_field", "type");
    invalid("{\"type\": 5}", "wrong_type", "type");
    invalid("{\"type\": \"Assigned\"}", "wrong_type", NULL);
    invalid("{\"type\": \"received\"}", "wrong_type", "received");
    invalid("{\"type\": \"clock_warning\"}", "wrong_type", "clock_warning");
    invalid("{\"type\": \"clock_breached\"}", "wrong_type", "clock_breached");
    invalid("{\"type\": \"frobnicated\"}", "wrong_type", "frobnicated");
    invalid("{\"type\": \"note\", \"actor\": 5}", "wrong_type", "actor");
    invalid("{\"type\": \"note\", \"note\": 5}", "wrong_type", "note");
    invalid("{\"type\": \"note\", \"data\": [1]}", "wrong_type", "data");
    invalid("{\"type\": \"note\", \"data\": \"x\"}", "wrong_type", "data");

    /* Without a profile callback only core types exist. */
    json_t *body = parse("{\"type\": \"containment\"}"), *out = NULL;
    struct voc_err err = {0};
    ck_assert_int_eq(voc_event_validate(body, NULL, NULL, &out, &err), -1);
    ck_assert_str_eq(err.code, "wrong_type");
    json_decref(body);

    json_t *e = valid("{\"type\": \"containment\"}");
    json_decref(e);
}
END_TEST

START_TEST(event_normalised)
{
    json_t *e = valid("{\"type\": \"note\"}");
    ck_assert_uint_eq(json_object_size(e), 4);
    ck_assert_str_eq(json_string_value(json_object_get(e, "type")), "note");
    ck_assert(json_is_null(json_object_get(e, "actor")));
    ck_assert(json_is_null(json_object_get(e, "note")));
    ck_assert(json_is_object(json_object_get(e, "data")));
    ck_assert_uint_eq(json_object_size(json_object_get(e, "data")), 0);
    json_decref(e);

    e = valid("{\"type\": \"note\", \"actor\": null, \"note\": null, \"data\": null}");
    ck_assert(json_is_null(json_object_get(e, "actor")));
    ck_assert(json_is_object(json_object_get(e, "data")));
    json_decref(e);

    /* The output is a copy: changing the input afterwards does not reach it. */
    json_t *body =
        parse("{\"type\": \"assigned\", \"actor\": \"王芳\", \"note\": \"转质量部\", "
              "\"data\": {\"department\": \"质量部\", \"collaborators\": [\"生产部\"]}}");
    json_t *out = NULL;
    struct voc_err err = {0};
    ck_assert_int_eq(voc_event_validate(body, NULL, NULL, &out, &err), 0);
    json_array_append_new(json_object_get(json_object_get(body, "data"), "collaborators"),
                          json_string("销售部"));
    json_object_set_new(json_object_get(body, "data"), "department", json_string("X"));
    ck_assert_str_eq(json_string_value(json_object_get(out, "actor")), "王芳");
    ck_assert_str_eq(json_string_value(json_object_get(out, "note")), "转质量部");
    json_t *data = json_object_get(out, "data");
    ck_assert_str_eq(json_string_value(json_object_get(data, "department")), "质量部");
    ck_assert_uint_eq(json_array_size(json_object_get(data, "collaborators")), 1);
    json_decref(out);
    json_decref(body);
}
END_TEST

START_TEST(event_data_per_type)
{
    /* assigned: department required */
    invalid("{\"type\": \"assigned\"}", "missing_field", "department");
    invalid("{\"type\": \"assigned\", \"data\": {}}", "missing_field", "department");
    invalid("{\"type\": \"assigned\", \"data\": {\"department\": \"\"}}", NULL, NULL);
    invalid("{\"type\": \"assigned\", \"data\": {\"department\": 7}}", NULL, NULL);
    invalid("{\"type\": \"assigned\", \"data\": {\"department\": \"质量部\", \"collaborators\": "
            "\"生产部\"}}",
            "wrong_type", "collaborators");
    invalid("{\"type\": \"assigned\", \"data\": {\"department\": \"质量部\", \"collaborators\": "
            "[\"\"]}}",
            "wrong_type", "collaborators");
    json_decref(valid("{\"type\": \"assigned\", \"data\": {\"department\": \"质量部\"}}"));

    /* revisited: satisfaction an integer 1..5 */
    invalid("{\"type\": \"revisited\"}", "missing_field", "satisfaction");
    static const char *const bad_scores[] = {"0", "6", "\"5\"", "4.5", "-1", "null", "true"};
    for (size_t i = 0; i < sizeof bad_scores / sizeof bad_scores[0]; i++) {
        char text[128];
        snprintf(text, sizeof text, "{\"type\": \"revisited\", \"data\": {\"satisfaction\": %s}}",
                 bad_scores[i]);
        json_t *body = parse(text), *out = NULL;
        struct voc_err err = {0};
        ck_assert_msg(voc_event_validate(body, NULL, NULL, &out, &err) == -1, "%s accepted", text);
        ck_assert_int_eq(err.status, 400);
        ck_assert_msg(strstr(err.message, "satisfaction") != NULL, "%s", err.message);
        json_decref(body);
    }
    for (int score = 1; score <= 5; score++) {
        char text[128];
        snprintf(text, sizeof text, "{\"type\": \"revisited\", \"data\": {\"satisfaction\": %d}}",
                 score);
        json_decref(valid(text));
    }

    /* duplicate: of = a case id */
    invalid("{\"type\": \"duplicate\"}", "missing_field", "of");
    invalid("{\"type\": \"duplicate\", \"data\": {\"of\": \"12\"}}", NULL, "of");
    invalid("{\"type\": \"duplicate\", \"data\": {\"of\": 0}}", NULL, "of");
    invalid("{\"type\": \"duplicate\", \"data\": {\"of\": -3}}", NULL, "of");
    json_decref(valid("{\"type\": \"duplicate\", \"data\": {\"of\": 12}}"));

    /* rejected: a note is the reason */
    invalid("{\"type\": \"rejected\"}", "missing_field", "note");
    invalid("{\"type\": \"rejected\", \"note\": \"\"}", "missing_field", "note");
    invalid("{\"type\": \"rejected\", \"note\": null}", "missing_field", "note");
    json_decref(valid("{\"type\": \"rejected\", \"note\": \"不属于服务范围\"}"));

    /* classified: classification fields */
    invalid("{\"type\": \"classified\"}", "missing_field", NULL);
    invalid("{\"type\": \"classified\", \"data\": {}}", "missing_field", NULL);
    invalid("{\"type\": \"classified\", \"data\": {\"kind\": \"rant\"}}", "wrong_type", "kind");
    invalid("{\"type\": \"classified\", \"data\": {\"kind\": 1}}", "wrong_type", "kind");
    invalid("{\"type\": \"classified\", \"data\": {\"priority\": 0}}", "wrong_type", "priority");
    invalid("{\"type\": \"classified\", \"data\": {\"priority\": 5}}", "wrong_type", "priority");
    invalid("{\"type\": \"classified\", \"data\": {\"priority\": \"1\"}}", "wrong_type",
            "priority");
    invalid("{\"type\": \"classified\", \"data\": {\"mood\": \"sad\"}}", "unknown_field", "mood");
    json_decref(valid("{\"type\": \"classified\", \"data\": {\"kind\": \"complaint\", "
                      "\"priority\": 1, \"category\": \"产品质量\"}}"));

    /* planned: due is an RFC 3339 time when given */
    invalid("{\"type\": \"planned\", \"data\": {\"due\": 5}}", "wrong_type", "due");
    invalid("{\"type\": \"planned\", \"data\": {\"due\": \"next week\"}}", "wrong_type", "due");
    json_decref(
        valid("{\"type\": \"planned\", \"data\": {\"due\": \"2026-11-30T18:00:00+08:00\"}}"));
    json_decref(valid("{\"type\": \"planned\"}"));
}
END_TEST

/* ---- voc_classification_validate ------------------------------------------------------- */

static void class_bad(const char *text, const char *code, const char *in_message)
{
    json_t *c = parse(text);
    struct voc_err err = {0};
    ck_assert_msg(voc_classification_validate(c, &err) == -1, "%s accepted", text);
    ck_assert_int_eq(err.status, 400);
    ck_assert_msg(strcmp(err.code, code) == 0, "%s: %s, want %s", text, err.code, code);
    if (in_message)
        ck_assert_msg(strstr(err.message, in_message) != NULL, "%s: %s", text, err.message);
    json_decref(c);
}

START_TEST(classification)
{
    static const char *const good[] = {
        "{}",
        "{\"kind\": \"complaint\"}",
        "{\"kind\": \"suggestion\"}",
        "{\"kind\": \"praise\"}",
        "{\"kind\": \"inquiry\"}",
        "{\"kind\": \"opinion\", \"priority\": 4}",
        "{\"kind\": \"complaint\", \"category\": \"产品质量\", \"severity\": \"严重\", "
        "\"department\": \"质量部\", \"collaborators\": [\"生产部\"], \"priority\": 1, "
        "\"tags\": [\"vip\", \"rule_error\"]}",
        "{\"collaborators\": [], \"tags\": []}",
        "{\"department\": \"\"}",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        json_t *c = parse(good[i]);
        struct voc_err err = {0};
        ck_assert_msg(voc_classification_validate(c, &err) == 0, "%s: %s", good[i], err.message);
        json_decref(c);
    }
    json_t *arr = json_array();
    struct voc_err err = {0};
    ck_assert_int_eq(voc_classification_validate(arr, &err), -1);
    ck_assert_str_eq(err.code, "wrong_type");
    json_decref(arr);

    class_bad("{\"kind\": \"Complaint\"}", "wrong_type", "kind");
    class_bad("{\"kind\": null}", "wrong_type", "kind");
    class_bad("{\"priority\": 0}", "wrong_type", "priority");
    class_bad("{\"priority\": 5}", "wrong_type", "priority");
    class_bad("{\"priority\": 2.0}", "wrong_type", "priority");
    class_bad("{\"category\": 3}", "wrong_type", "category");
    class_bad("{\"severity\": [\"x\"]}", "wrong_type", "severity");
    class_bad("{\"department\": null}", "wrong_type", "department");
    class_bad("{\"tags\": \"vip\"}", "wrong_type", "tags");
    class_bad("{\"tags\": [\"vip\", 3]}", "wrong_type", "tags[1]");
    class_bad("{\"collaborators\": [\"\"]}", "wrong_type", "collaborators[0]");
    class_bad("{\"owner\": \"x\"}", "unknown_field", "owner");

    /* Strings are bounded (index keys and the UI); 256 bytes pass, 257 do not. */
    char text[600];
    snprintf(text, sizeof text, "{\"category\": \"%0256d\"}", 0);
    json_t *c = parse(text);
    ck_assert_int_eq(voc_classification_validate(c, &err), 0);
    json_decref(c);
    snprintf(text, sizeof text, "{\"category\": \"%0257d\"}", 0);
    class_bad(text, "wrong_type", "category");
}
END_TEST

static Suite *lifecycle_suite(void)
{
    Suite *s = suite_create("lifecycle");
    TCase *tc = tcase_create("lifecycle");
    tcase_add_test(tc, transition_table);
    tcase_add_test(tc, waiting_and_resumed);
    tcase_add_test(tc, states_and_types);
    tcase_add_test(tc, event_shape);
    tcase_add_test(tc, event_normalised);
    tcase_add_test(tc, event_data_per_type);
    tcase_add_test(tc, classification);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(lifecycle_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
