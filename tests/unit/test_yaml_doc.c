/* The YAML tree (daemon/yaml_doc.[ch]): line numbers on every node, and the things config
 * files may not use (anchors, aliases, several documents, duplicate keys) refused with
 * file:line. */
#include "yaml_doc.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int load(const char *text, struct voc_yaml_doc *doc, struct voc_diag *diag)
{
    voc_diag_init(diag);
    return voc_yaml_load_string("t.yaml", text, strlen(text), doc, diag);
}

/* Loading must fail with exactly one error that starts with "t.yaml:LINE: " and contains
 * `words`. */
static void refused(const char *text, int line, const char *words)
{
    struct voc_yaml_doc doc;
    struct voc_diag diag;
    int rc = load(text, &doc, &diag);
    ck_assert_msg(rc == -1, "accepted:\n%s", text);
    ck_assert_ptr_null(doc.root);
    ck_assert_uint_eq(diag.errors, 1);
    char prefix[32];
    snprintf(prefix, sizeof prefix, "t.yaml:%d: ", line);
    ck_assert_msg(strncmp(diag.messages[0], prefix, strlen(prefix)) == 0,
                  "'%s' does not start with '%s'", diag.messages[0], prefix);
    ck_assert_msg(strstr(diag.messages[0], words) != NULL, "'%s' lacks '%s'", diag.messages[0],
                  words);
    voc_diag_free(&diag);
    voc_yaml_doc_free(&doc);
}

START_TEST(tree_and_lines)
{
    const char *text = "# comment\n"
                       "name: vocd\n"              /* 2 */
                       "listen:\n"                 /* 3 */
                       "  http: 127.0.0.1:8080\n"  /* 4 */
                       "list:\n"                   /* 5 */
                       "  - one\n"                 /* 6 */
                       "  - { a: 1, b: [x, y] }\n" /* 7 */
                       "quoted: \"null\"\n"        /* 8 */
                       "plain_null: null\n"        /* 9 */
                       "tilde: ~\n"                /* 10 */
                       "empty:\n"                  /* 11 */
                       "block: |\n"                /* 12 */
                       "  two\n"
                       "  lines\n"
                       "chinese: 质量部\n"; /* 15 */
    struct voc_yaml_doc doc;
    struct voc_diag diag;
    ck_assert_int_eq(load(text, &doc, &diag), 0);
    ck_assert_uint_eq(diag.count, 0);
    ck_assert_str_eq(doc.path, "t.yaml");
    struct voc_yaml_node *root = doc.root;
    ck_assert_int_eq(root->type, VOC_YAML_MAP);
    ck_assert_uint_eq(root->count, 9);

    struct voc_yaml_node *n = voc_yaml_get(root, "name");
    ck_assert_int_eq(n->type, VOC_YAML_SCALAR);
    ck_assert_str_eq(n->scalar, "vocd");
    ck_assert_int_eq(n->line, 2);
    ck_assert(root->keys[0]->used);
    ck_assert(!root->keys[1]->used);

    struct voc_yaml_node *listen = voc_yaml_get(root, "listen");
    ck_assert_int_eq(listen->type, VOC_YAML_MAP);
    ck_assert_int_eq(listen->line, 4);
    n = voc_yaml_get(listen, "http");
    ck_assert_str_eq(n->scalar, "127.0.0.1:8080");
    ck_assert_int_eq(n->line, 4);

    struct voc_yaml_node *list = voc_yaml_get(root, "list");
    ck_assert_int_eq(list->type, VOC_YAML_SEQ);
    ck_assert_uint_eq(list->count, 2);
    ck_assert_ptr_null(list->keys);
    ck_assert_int_eq(list->values[0]->line, 6);
    ck_assert_int_eq(list->values[1]->type, VOC_YAML_MAP);
    ck_assert_int_eq(list->values[1]->line, 7);
    struct voc_yaml_node *b = voc_yaml_get(list->values[1], "b");
    ck_assert_int_eq(b->type, VOC_YAML_SEQ);
    ck_assert_str_eq(b->values[1]->scalar, "y");
    ck_assert_int_eq(b->values[1]->line, 7);
    /* Lookups on things that are not mappings find nothing. */
    ck_assert_ptr_null(voc_yaml_get(list, "a"));
    ck_assert_ptr_null(voc_yaml_get(n, "a"));
    ck_assert_ptr_null(voc_yaml_get(NULL, "a"));
    ck_assert_ptr_null(voc_yaml_get(root, "absent"));

    n = voc_yaml_get(root, "quoted");
    ck_assert(n->quoted);
    ck_assert(!voc_yaml_is_null(n));
    ck_assert(voc_yaml_is_null(voc_yaml_get(root, "plain_null")));
    ck_assert(voc_yaml_is_null(voc_yaml_get(root, "tilde")));
    ck_assert(voc_yaml_is_null(voc_yaml_get(root, "empty")));
    ck_assert(!voc_yaml_is_null(listen));
    ck_assert(!voc_yaml_is_null(NULL));
    n = voc_yaml_get(root, "block");
    ck_assert_str_eq(n->scalar, "two\nlines\n");
    ck_assert(n->quoted);
    n = voc_yaml_get(root, "chinese");
    ck_assert_str_eq(n->scalar, "质量部");
    ck_assert_int_eq(n->line, 15);

    ck_assert_str_eq(voc_yaml_type_name(VOC_YAML_SCALAR), "a value");
    ck_assert_str_eq(voc_yaml_type_name(VOC_YAML_MAP), "a mapping");
    ck_assert_str_eq(voc_yaml_type_name(VOC_YAML_SEQ), "a list");
    voc_yaml_doc_free(&doc);
    ck_assert_ptr_null(doc.root);
    ck_assert_ptr_null(doc.path);
    voc_diag_free(&diag);
}
END_TEST

START_TEST(empty_documents)
{
    /* No node at all, or (an explicit "---" with nothing after it) YAML's null. */
    static const char *const texts[] = {"", "# only a comment\n", "---\n", "---\n...\n"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        struct voc_yaml_doc doc;
        struct voc_diag diag;
        ck_assert_int_eq(load(texts[i], &doc, &diag), 0);
        ck_assert_msg(doc.root == NULL || voc_yaml_is_null(doc.root), "%s", texts[i]);
        ck_assert_uint_eq(diag.count, 0);
        voc_yaml_doc_free(&doc);
        voc_diag_free(&diag);
    }
    struct voc_yaml_doc doc;
    struct voc_diag diag;
    ck_assert_int_eq(load("just a scalar\n", &doc, &diag), 0);
    ck_assert_int_eq(doc.root->type, VOC_YAML_SCALAR);
    voc_yaml_doc_free(&doc);
    voc_diag_free(&diag);
}
END_TEST

START_TEST(duplicate_keys)
{
    refused("a: 1\nb: 2\na: 3\n", 3, "duplicate key 'a' (first at line 1)");
    refused("outer:\n  x: 1\n  y: 2\n  x: 3\n", 4, "duplicate key 'x' (first at line 2)");
    refused("- { k: 1, k: 2 }\n", 1, "duplicate key 'k'");
}
END_TEST

START_TEST(anchors_and_aliases)
{
    refused("a: &x 1\nb: 2\n", 1, "anchors are not supported");
    refused("base: &b\n  x: 1\nother: 2\n", 1, "anchors are not supported");
    refused("list: &l [1, 2]\n", 1, "anchors are not supported");
    refused("a: 1\nb: *x\n", 2, "");
}
END_TEST

START_TEST(multiple_documents)
{
    refused("a: 1\n---\nb: 2\n", 2, "only one YAML document");
    refused("---\na: 1\n...\n---\nb: 2\n", 4, "only one YAML document");
}
END_TEST

START_TEST(syntax_errors)
{
    refused("a: [1, 2\nb: 3\n", 2, "");
    refused("a: 1\n  b: 2\n", 2, "");
    refused("a: \"unterminated\n", 2, "");
    refused("key: value\n\tbad: tab\n", 2, "");
}
END_TEST

START_TEST(odd_structures)
{
    refused("? [a, b]\n: 1\n", 1, "mapping keys must be plain words");
    refused("a: \"x\\0y\"\n", 1, "NUL byte");
    /* 70 levels of nested lists. */
    char deep[256] = "a: ";
    for (int i = 0; i < 70; i++)
        strcat(deep, "[");
    for (int i = 0; i < 70; i++)
        strcat(deep, "]");
    strcat(deep, "\n");
    refused(deep, 1, "nesting deeper than");
}
END_TEST

START_TEST(files)
{
    char dir[] = "/tmp/voc-yaml-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/c.yaml", dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("first: 1\n\nthird: [a,\n  b]\n", f);
    fclose(f);
    struct voc_yaml_doc doc;
    struct voc_diag diag;
    voc_diag_init(&diag);
    ck_assert_int_eq(voc_yaml_load_file(path, &doc, &diag), 0);
    ck_assert_str_eq(doc.path, path);
    ck_assert_int_eq(voc_yaml_get(doc.root, "third")->line, 3);
    ck_assert_int_eq(voc_yaml_get(doc.root, "third")->values[1]->line, 4);
    voc_yaml_doc_free(&doc);

    f = fopen(path, "w");
    fputs("ok: 1\nbad: [\n", f);
    fclose(f);
    ck_assert_int_eq(voc_yaml_load_file(path, &doc, &diag), -1);
    ck_assert_uint_eq(diag.errors, 1);
    char prefix[300];
    snprintf(prefix, sizeof prefix, "%s:", path);
    ck_assert_msg(strncmp(diag.messages[0], prefix, strlen(prefix)) == 0, "%s", diag.messages[0]);
    voc_diag_free(&diag);

    voc_diag_init(&diag);
    unlink(path);
    ck_assert_int_eq(voc_yaml_load_file(path, &doc, &diag), -1);
    ck_assert_uint_eq(diag.errors, 1);
    ck_assert_msg(strstr(diag.messages[0], "cannot open") != NULL, "%s", diag.messages[0]);
    ck_assert_msg(strncmp(diag.messages[0], prefix, strlen(prefix)) == 0, "%s", diag.messages[0]);
    voc_diag_free(&diag);
    rmdir(dir);
}
END_TEST

static Suite *yaml_suite(void)
{
    Suite *s = suite_create("yaml_doc");
    TCase *tc = tcase_create("yaml_doc");
    tcase_add_test(tc, tree_and_lines);
    tcase_add_test(tc, empty_documents);
    tcase_add_test(tc, duplicate_keys);
    tcase_add_test(tc, anchors_and_aliases);
    tcase_add_test(tc, multiple_documents);
    tcase_add_test(tc, syntax_errors);
    tcase_add_test(tc, odd_structures);
    tcase_add_test(tc, files);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(yaml_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
