/* Lazy tables (lua_lazy.c): to a rule they must behave as the plain table voc_lua_push_json
 * would give, except for raw access; the JSON reference is released with the table. */
#include <check.h>
#include <jansson.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdlib.h>
#include <string.h>

#include "lua_lazy.h"

static lua_State *L;
static json_t *object;
static int missing_calls;

static void setup(void)
{
    L = luaL_newstate();
    luaL_openlibs(L);
    object = json_pack("{s:i, s:s, s:{s:s, s:[s,s]}, s:n, s:[{s:s}, {s:s}]}", "id", 7, "subject",
                       "电饭煲无法加热", "classification", "category", "产品质量", "tags", "a", "b",
                       "duplicate_of", "events", "type", "received", "type", "classified");
    ck_assert_ptr_nonnull(object);
    missing_calls = 0;
}

static void teardown(void)
{
    if (L)
        lua_close(L);
    L = NULL;
    json_decref(object);
}

/* The `missing` hook: answers "computed" for the key "extra" only. */
static int answer_extra(lua_State *Ls)
{
    missing_calls++;
    if (strcmp(luaL_checkstring(Ls, 2), "extra") != 0)
        return 0;
    lua_pushliteral(Ls, "computed");
    return 1;
}

/* Run `chunk` with the lazy table as global `case`; returns its single result as a string. */
static const char *run(const char *chunk)
{
    voc_lua_push_lazy(L, object, answer_extra, NULL);
    lua_setglobal(L, "case");
    int rc = luaL_dostring(L, chunk);
    ck_assert_msg(rc == LUA_OK, "%s: %s", chunk, lua_tostring(L, -1));
    return lua_tostring(L, -1);
}

START_TEST(reads_like_a_plain_table)
{
    ck_assert_str_eq(run("return tostring(case.id)"), "7");
    ck_assert_str_eq(run("return case.subject"), "电饭煲无法加热");
    ck_assert_str_eq(run("return case.classification.tags[2]"), "b");
    ck_assert_str_eq(run("return tostring(#case.events)"), "2");
    ck_assert_str_eq(run("return case.events[2].type"), "classified");
    ck_assert_str_eq(run("return tostring(case.duplicate_of)"), "nil"); /* null is absent */
    ck_assert_str_eq(run("return tostring(case.classification == case.classification)"), "true");
    ck_assert_str_eq(run("return tostring(case[1])"), "nil");
}
END_TEST

START_TEST(assignments_win_over_the_json)
{
    ck_assert_str_eq(run("case.subject = nil; return tostring(case.subject)"), "nil");
    ck_assert_str_eq(
        run("local _ = case.subject; case.subject = nil; return tostring(case.subject)"), "nil");
    ck_assert_str_eq(run("case.id = 'x'; return case.id"), "x");
    ck_assert_str_eq(run("case.new = 1; return tostring(case.new)"), "1");
    ck_assert_str_eq(
        run("case.classification.category = '服务'; return case.classification.category"), "服务");
}
END_TEST

START_TEST(pairs_lists_every_field_once)
{
    const char *got = run("case.subject = nil; case.added = true\n"
                          "local keys = {}\n"
                          "for k in pairs(case) do keys[#keys + 1] = k end\n"
                          "table.sort(keys)\n"
                          "return table.concat(keys, ',')");
    ck_assert_str_eq(got, "added,classification,events,id");
}
END_TEST

START_TEST(missing_fields_ask_the_hook_once)
{
    ck_assert_str_eq(run("return case.extra .. '/' .. case.extra"), "computed/computed");
    ck_assert_int_eq(missing_calls, 1);
    ck_assert_str_eq(run("return tostring(case.nothing) .. tostring(case.nothing)"), "nilnil");
    ck_assert_int_eq(missing_calls, 2);
    /* pairs lists what the object has, not what the hook could make up. */
    ck_assert_str_eq(run("local n = 0 for k in pairs(case) do n = n + 1 end return tostring(n)"),
                     "4");
}
END_TEST

START_TEST(metatable_is_protected)
{
    ck_assert_str_eq(run("return tostring(getmetatable(case))"), "false");
    voc_lua_push_lazy(L, object, NULL, NULL);
    lua_setglobal(L, "case");
    ck_assert_int_ne(luaL_dostring(L, "setmetatable(case, {})"), LUA_OK);
    ck_assert_ptr_nonnull(strstr(lua_tostring(L, -1), "protected metatable"));
}
END_TEST

START_TEST(json_reference_released_with_the_table)
{
    ck_assert_int_eq(object->refcount, 1);
    run("return case.subject");
    ck_assert_int_eq(object->refcount, 2);
    lua_pushnil(L);
    lua_setglobal(L, "case");
    lua_gc(L, LUA_GCCOLLECT);
    ck_assert_int_eq(object->refcount, 1);
    run("return 1");
    lua_close(L);
    L = NULL;
    ck_assert_int_eq(object->refcount, 1);
}
END_TEST

static Suite *lazy_suite(void)
{
    Suite *s = suite_create("lua_lazy");
    TCase *tc = tcase_create("lazy");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, reads_like_a_plain_table);
    tcase_add_test(tc, assignments_win_over_the_json);
    tcase_add_test(tc, pairs_lists_every_field_once);
    tcase_add_test(tc, missing_fields_ask_the_hook_once);
    tcase_add_test(tc, metatable_is_protected);
    tcase_add_test(tc, json_reference_released_with_the_table);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(lazy_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
