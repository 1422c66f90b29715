#include "keyword_match.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NO_MATCH UINT32_MAX
/* Set on a transition whose target state reports a keyword, so the search loop needs one
 * load per byte and looks at the match table only on a hit. */
#define MATCH_FLAG 0x80000000u
/* The dense table is states x byte classes of 4 bytes. A few hundred Chinese keywords make
 * well under a MiB; refuse lists that would need more than 256 MiB (and keep row offsets
 * below MATCH_FLAG). */
#define MAX_TABLE_ENTRIES ((size_t)1 << 26)

struct voc_kwmatch {
    uint8_t byte_class[256]; /* bytes that occur in no keyword share class 0 */
    uint32_t nclasses;
    uint32_t nstates;
    uint32_t *next;  /* [state * nclasses + class]: next state's row offset | MATCH_FLAG */
    uint32_t *match; /* [state]: keyword reported on reaching the state, or NO_MATCH */
    size_t count;
};

static int fail_msg(char **err, const char *fmt, size_t arg)
{
    if (err) {
        char msg[128];
        snprintf(msg, sizeof msg, fmt, arg);
        *err = strdup(msg);
    }
    return -1;
}

void voc_kwmatch_free(struct voc_kwmatch *m)
{
    if (!m)
        return;
    free(m->next);
    free(m->match);
    free(m);
}

size_t voc_kwmatch_count(const struct voc_kwmatch *m)
{
    return m->count;
}

size_t voc_kwmatch_memory(const struct voc_kwmatch *m)
{
    return sizeof *m + (size_t)m->nstates * m->nclasses * sizeof *m->next +
           (size_t)m->nstates * sizeof *m->match;
}

/* Insert every keyword into the trie held in m->next (0 = no edge: the root is never a
 * child) and record in own[] the first keyword ending at each state. */
static void build_trie(struct voc_kwmatch *m, const char *const *keywords, const size_t *lens,
                       size_t count, uint32_t *own)
{
    m->nstates = 1;
    own[0] = NO_MATCH;
    for (size_t k = 0; k < count; k++) {
        uint32_t s = 0;
        for (size_t i = 0; i < lens[k]; i++) {
            uint32_t *slot =
                &m->next[(size_t)s * m->nclasses + m->byte_class[(unsigned char)keywords[k][i]]];
            if (*slot == 0) {
                own[m->nstates] = NO_MATCH;
                *slot = m->nstates++;
            }
            s = *slot;
        }
        if (own[s] == NO_MATCH)
            own[s] = (uint32_t)k; /* duplicates: the first listed wins */
    }
}

/* Breadth-first: each state's failure state is shallower, so its row is already complete
 * when we fill this state's missing transitions from it. */
static int build_automaton(struct voc_kwmatch *m, const uint32_t *own)
{
    uint32_t *fail = malloc((size_t)m->nstates * sizeof *fail);
    uint32_t *queue = malloc((size_t)m->nstates * sizeof *queue);
    if (!fail || !queue) {
        free(fail);
        free(queue);
        return -1;
    }
    size_t head = 0, tail = 0;
    fail[0] = 0;
    m->match[0] = NO_MATCH;
    for (uint32_t c = 0; c < m->nclasses; c++) {
        uint32_t t = m->next[c];
        if (t != 0) {
            fail[t] = 0;
            m->match[t] = own[t];
            queue[tail++] = t;
        }
    }
    while (head < tail) {
        uint32_t s = queue[head++];
        uint32_t *row = &m->next[(size_t)s * m->nclasses];
        const uint32_t *frow = &m->next[(size_t)fail[s] * m->nclasses];
        for (uint32_t c = 0; c < m->nclasses; c++) {
            uint32_t t = row[c];
            if (t == 0) {
                row[c] = frow[c];
                continue;
            }
            fail[t] = frow[c];
            uint32_t inherited = m->match[fail[t]];
            m->match[t] = own[t] < inherited ? own[t] : inherited;
            queue[tail++] = t;
        }
    }
    free(fail);
    free(queue);

    /* State ids become row offsets so the search loop does no multiplication. */
    size_t entries = (size_t)m->nstates * m->nclasses;
    for (size_t i = 0; i < entries; i++) {
        uint32_t t = m->next[i];
        m->next[i] = t * m->nclasses | (m->match[t] != NO_MATCH ? MATCH_FLAG : 0);
    }
    return 0;
}

size_t voc_kwmatch_estimate(const char *const *keywords, const size_t *lens, size_t count)
{
    bool seen[256] = {false};
    size_t states = 1, classes = 1;
    for (size_t k = 0; k < count; k++) {
        states += lens[k];
        if (states > MAX_TABLE_ENTRIES)
            return SIZE_MAX;
        for (size_t i = 0; i < lens[k]; i++) {
            unsigned char b = (unsigned char)keywords[k][i];
            classes += !seen[b];
            seen[b] = true;
        }
    }
    if (classes > 256)
        classes = 256;
    if (states > MAX_TABLE_ENTRIES / classes)
        return SIZE_MAX;
    /* The table before it is trimmed, plus own[], match[], fail[] and the queue. */
    return sizeof(struct voc_kwmatch) + states * classes * sizeof(uint32_t) +
           4 * states * sizeof(uint32_t);
}

int voc_kwmatch_compile(const char *const *keywords, const size_t *lens, size_t count,
                        struct voc_kwmatch **out, char **err)
{
    *out = NULL;
    if (err)
        *err = NULL;
    uint32_t *own = NULL;
    if (count >= NO_MATCH)
        return fail_msg(err, "too many keywords (%zu)", count);
    struct voc_kwmatch *m = calloc(1, sizeof *m);
    if (!m)
        goto nomem;

    bool seen[256] = {false};
    size_t max_states = 1;
    for (size_t k = 0; k < count; k++) {
        if (lens[k] == 0) {
            voc_kwmatch_free(m);
            return fail_msg(err, "keyword %zu is empty", k + 1);
        }
        for (size_t i = 0; i < lens[k]; i++)
            seen[(unsigned char)keywords[k][i]] = true;
        max_states += lens[k];
        if (max_states > MAX_TABLE_ENTRIES)
            break;
    }
    m->nclasses = 1;
    for (int b = 0; b < 256; b++)
        m->byte_class[b] = seen[b] ? (uint8_t)m->nclasses++ : 0;
    /* 256 distinct bytes would overflow uint8_t classes; class 0 is then simply unused. */
    if (m->nclasses > 256) {
        m->nclasses = 256;
        for (int b = 0; b < 256; b++)
            m->byte_class[b] = (uint8_t)b;
    }
    if (max_states > MAX_TABLE_ENTRIES / m->nclasses) {
        voc_kwmatch_free(m);
        return fail_msg(err, "keyword list too large (%zu keywords)", count);
    }

    m->next = calloc(max_states * m->nclasses, sizeof *m->next);
    own = malloc(max_states * sizeof *own);
    if (!m->next || !own)
        goto nomem;
    build_trie(m, keywords, lens, count, own);
    m->match = malloc((size_t)m->nstates * sizeof *m->match);
    if (!m->match)
        goto nomem;
    /* Shared prefixes leave the tail of the table unused; give it back. */
    uint32_t *shrunk = realloc(m->next, (size_t)m->nstates * m->nclasses * sizeof *m->next);
    if (shrunk)
        m->next = shrunk;
    if (build_automaton(m, own) != 0)
        goto nomem;
    free(own);
    m->count = count;
    *out = m;
    return 0;
nomem:
    free(own);
    voc_kwmatch_free(m);
    if (err)
        *err = strdup("out of memory");
    return -1;
}

bool voc_kwmatch_find(const struct voc_kwmatch *m, const char *text, size_t len, size_t *index)
{
    const uint32_t *next = m->next;
    const uint8_t *cls = m->byte_class;
    const unsigned char *p = (const unsigned char *)text;
    uint32_t s = 0;
    for (size_t i = 0; i < len; i++) {
        s = next[s + cls[p[i]]];
        if (s & MATCH_FLAG) {
            if (index)
                *index = m->match[(s & ~MATCH_FLAG) / m->nclasses];
            return true;
        }
    }
    return false;
}
