/* Multi-keyword search: an Aho-Corasick automaton over bytes, compiled once per keyword list
 * and then run over any number of texts in one pass each, however many keywords there are.
 *
 * The matcher compares bytes. Give it keywords and texts in the same form (voc_normalize
 * both, as the Lua `voc.contains_any` does); UTF-8 being self-synchronising, a byte match of
 * a whole keyword is always a match of whole characters.
 *
 * A compiled matcher is immutable: any number of threads may search it at once.
 */
#ifndef VOC_KEYWORD_MATCH_H
#define VOC_KEYWORD_MATCH_H

#include <stdbool.h>
#include <stddef.h>

struct voc_kwmatch;

/* Compile `count` keywords (keywords[i] is lens[i] bytes, not necessarily NUL-terminated).
 * Empty keywords are refused. Returns 0 and sets *out, or -1 with *err (malloc'd), e.g.
 * "keyword 3 is empty" (1-based, as a rule author counts). */
int voc_kwmatch_compile(const char *const *keywords, const size_t *lens, size_t count,
                        struct voc_kwmatch **out, char **err);
void voc_kwmatch_free(struct voc_kwmatch *m);

/* Search `text`. Returns true when some keyword occurs and sets *index (0-based) to the one
 * whose occurrence ends first in the text; among keywords ending at the same byte, the one
 * that comes first in the list. `index` may be NULL. */
bool voc_kwmatch_find(const struct voc_kwmatch *m, const char *text, size_t len, size_t *index);

/* Number of keywords compiled in. */
size_t voc_kwmatch_count(const struct voc_kwmatch *m);

/* The most memory voc_kwmatch_compile will allocate for these keywords, so a caller with a
 * memory budget can refuse a huge list before building it. SIZE_MAX if it is too large. */
size_t voc_kwmatch_estimate(const char *const *keywords, const size_t *lens, size_t count);

/* Bytes held by the matcher, so a caller with a memory budget can charge it. */
size_t voc_kwmatch_memory(const struct voc_kwmatch *m);

#endif
