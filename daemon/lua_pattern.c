#define _GNU_SOURCE /* memmem */
#include "lua_pattern.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Patterns whose rough bound (every repeated item over the whole subject) stays under this
 * many steps are not measured further: building class tables and scanning would cost more
 * than the precision saves. */
#define ROUGH_ENOUGH 4096.0

enum item_kind {
    ITEM_CLASS,   /* one character class, maybe repeated */
    ITEM_SUBJECT, /* %b and back-references: may run over the whole subject */
    ITEM_ZERO,    /* captures, %f, a final $: consume nothing */
};

struct item {
    enum item_kind kind;
    size_t cls, cls_end; /* ITEM_CLASS: the class is p[cls, cls_end) */
    char quant;          /* '*', '+', '-', '?' or 0 */
};

struct parse {
    const char *p;
    size_t m;
    char *err;
    size_t errsize;
};

static int malformed(struct parse *x, const char *what)
{
    snprintf(x->err, x->errsize, "%s", what);
    return -1;
}

/* End (exclusive) of the single character class starting at i, as Lua's matcher reads it. */
static int class_end(struct parse *x, size_t i, size_t *end)
{
    const char *p = x->p;
    char c = p[i++];
    if (c == '%') {
        if (i >= x->m)
            return malformed(x, "malformed pattern (ends with '%')");
        *end = i + 1;
        return 0;
    }
    if (c == '[') {
        if (i < x->m && p[i] == '^')
            i++;
        /* The first character of a set is taken as is, even ']'; '%' escapes the next. */
        for (;;) {
            if (i >= x->m)
                return malformed(x, "malformed pattern (missing ']')");
            if (p[i++] == '%' && i < x->m)
                i++;
            if (i < x->m && p[i] == ']')
                break;
        }
        *end = i + 1;
        return 0;
    }
    *end = i;
    return 0;
}

/* %a, %d ... (upper case: the complement); any other character stands for itself. */
static bool class_letter(unsigned char cl, int c)
{
    int res;
    switch (tolower(cl)) {
    case 'a':
        res = isalpha(c);
        break;
    case 'c':
        res = iscntrl(c);
        break;
    case 'd':
        res = isdigit(c);
        break;
    case 'g':
        res = isgraph(c);
        break;
    case 'l':
        res = islower(c);
        break;
    case 'p':
        res = ispunct(c);
        break;
    case 's':
        res = isspace(c);
        break;
    case 'u':
        res = isupper(c);
        break;
    case 'w':
        res = isalnum(c);
        break;
    case 'x':
        res = isxdigit(c);
        break;
    default:
        return cl == c;
    }
    return isupper(cl) ? !res : res != 0;
}

/* Is byte c in the set p[open] = '[' .. p[close] = ']'? */
static bool set_has(const char *p, size_t open, size_t close, int c)
{
    size_t k = open + 1;
    bool in = true;
    if (p[k] == '^') {
        in = false;
        k++;
    }
    for (; k < close; k++) {
        unsigned char ch = (unsigned char)p[k];
        if (ch == '%') {
            k++;
            if (class_letter((unsigned char)p[k], c))
                return in;
        } else if (k + 2 < close && p[k + 1] == '-') {
            if (ch <= c && c <= (unsigned char)p[k + 2])
                return in;
            k += 2;
        } else if (ch == c) {
            return in;
        }
    }
    return !in;
}

static bool class_has(const char *p, const struct item *it, int c)
{
    switch (p[it->cls]) {
    case '.':
        return true;
    case '%':
        return class_letter((unsigned char)p[it->cls + 1], c);
    case '[':
        return set_has(p, it->cls, it->cls_end - 1, c);
    default:
        return (unsigned char)p[it->cls] == c;
    }
}

static void class_table(const char *p, const struct item *it, bool table[256])
{
    for (int c = 0; c < 256; c++)
        table[c] = class_has(p, it, c);
}

/* The literal byte a class stands for, or -1 when it is a real class. */
static int literal_of(const char *p, const struct item *it)
{
    char c = p[it->cls];
    if (c == '.' || c == '[')
        return -1;
    if (c == '%')
        return isalnum((unsigned char)p[it->cls + 1]) ? -1 : (unsigned char)p[it->cls + 1];
    return (unsigned char)c;
}

static size_t longest_run(const char *s, size_t n, const bool table[256])
{
    size_t best = 0, run = 0;
    for (size_t i = 0; i < n; i++) {
        if (table[(unsigned char)s[i]]) {
            if (++run > best)
                best = run;
        } else {
            run = 0;
        }
    }
    return best;
}

static size_t count_occurrences(const char *s, size_t n, const char *lit, size_t len)
{
    size_t count = 0;
    for (const char *at = s, *end = s + n; (size_t)(end - at) >= len;) {
        const char *hit = memmem(at, (size_t)(end - at), lit, len);
        if (!hit)
            break;
        count++;
        at = hit + 1;
    }
    return count;
}

/* Split the pattern into items; returns the count, or -1 (malformed). `items` has room for m
 * entries (an item takes at least one byte of pattern). */
static long parse_items(struct parse *x, size_t i, struct item *items)
{
    const char *p = x->p;
    size_t count = 0;
    while (i < x->m) {
        struct item it = {.kind = ITEM_ZERO};
        char c = p[i];
        if (c == '(') {
            i += (i + 1 < x->m && p[i + 1] == ')') ? 2 : 1;
        } else if (c == ')') {
            i++;
        } else if (c == '$' && i + 1 == x->m) {
            i++;
        } else if (c == '%' && i + 1 < x->m && p[i + 1] == 'b') {
            if (i + 3 >= x->m)
                return malformed(x, "malformed pattern (missing arguments to '%b')");
            it.kind = ITEM_SUBJECT;
            i += 4;
        } else if (c == '%' && i + 1 < x->m && p[i + 1] == 'f') {
            i += 2;
            if (i >= x->m || p[i] != '[')
                return malformed(x, "missing '[' after '%f' in pattern");
            if (class_end(x, i, &i) != 0)
                return -1;
        } else if (c == '%' && i + 1 < x->m && isdigit((unsigned char)p[i + 1])) {
            it.kind = ITEM_SUBJECT;
            i += 2;
        } else {
            it.kind = ITEM_CLASS;
            it.cls = i;
            if (class_end(x, i, &it.cls_end) != 0)
                return -1;
            i = it.cls_end;
            if (i < x->m && strchr("*+-?", p[i]) && p[i] != '\0')
                it.quant = p[i++];
        }
        items[count++] = it;
    }
    return (long)count;
}

bool voc_pattern_has_specials(const char *p, size_t m)
{
    for (size_t i = 0; i < m; i++)
        if (strchr("^$*+?.([%-", p[i]) && p[i] != '\0')
            return true;
    return false;
}

int voc_pattern_cost(const char *s, size_t n, const char *p, size_t m, bool anchor, double limit,
                     double *total, char *err, size_t errsize)
{
    struct parse x = {.p = p, .m = m, .err = err, .errsize = errsize};
    if (errsize)
        err[0] = '\0';
    bool anchored = anchor && m > 0 && p[0] == '^';
    /* An item takes at least one byte of pattern; most patterns fit on the stack. */
    struct item stack_items[64];
    struct item *items = stack_items;
    struct item *heap = NULL;
    if (m > sizeof stack_items / sizeof stack_items[0]) {
        heap = calloc(m, sizeof *heap);
        if (!heap) {
            snprintf(err, errsize, "out of memory");
            return -1;
        }
        items = heap;
    }
    long count = parse_items(&x, anchored ? 1 : 0, items);
    if (count < 0) {
        free(heap);
        return -1;
    }

    double whole = (double)n + 1;
    double rough = (double)count + 1;
    for (long k = 0; k < count; k++) {
        if (items[k].kind == ITEM_SUBJECT)
            rough *= whole;
        else if (items[k].kind == ITEM_CLASS && items[k].quant)
            rough *= items[k].quant == '?' ? 2 : whole;
    }
    double starts = anchored ? 1 : whole;
    *total = whole + starts * rough;
    if (*total <= ROUGH_ENOUGH || *total > 1e300) {
        free(heap);
        return 0;
    }

    /* Measure. Every scan below is a pass over the subject and counts as work itself. */
    double work = whole;
    long first = 0;
    while (first < count && items[first].kind == ITEM_ZERO)
        first++;
    if (!anchored && first < count && items[first].kind == ITEM_CLASS) {
        /* Literal text at the start: attempts elsewhere fail at once. */
        char lit[64];
        size_t len = 0;
        for (long k = first; k < count && len < sizeof lit; k++) {
            if (items[k].kind == ITEM_ZERO)
                continue;
            int c = items[k].kind == ITEM_CLASS && !items[k].quant ? literal_of(p, &items[k]) : -1;
            if (c < 0)
                break;
            lit[len++] = (char)c;
        }
        if (len > 0) {
            starts = (double)count_occurrences(s, n, lit, len);
        } else if (!items[first].quant || items[first].quant == '+') {
            bool table[256];
            class_table(p, &items[first], table);
            size_t in = 0;
            for (size_t i = 0; i < n; i++)
                in += table[(unsigned char)s[i]];
            starts = (double)in;
        }
        work += whole;
    }
    double per_start = (double)count + 1;
    for (long k = 0; k < count; k++) {
        if (items[k].kind == ITEM_SUBJECT) {
            per_start *= whole;
        } else if (items[k].kind == ITEM_CLASS && items[k].quant == '?') {
            per_start *= 2;
        } else if (items[k].kind == ITEM_CLASS && items[k].quant) {
            if (work + starts * per_start > limit)
                break; /* already too much: no need to look further */
            bool table[256];
            class_table(p, &items[k], table);
            per_start *= (double)longest_run(s, n, table) + 1;
            work += whole;
        }
    }
    free(heap);
    *total = work + starts * per_start;
    return 0;
}

void voc_pattern_plain_cost(const char *s, size_t n, const char *p, size_t m, double *total)
{
    double starts = m ? (double)count_occurrences(s, n, p, 1) : 1;
    /* memchr-like scanning: a step per 2 bytes. */
    *total = (double)n / 2 + starts * ((double)m + 1);
}
