/* The worst-case work of a Lua pattern match, estimated before it runs.
 *
 * string.find / match / gmatch / gsub run Lua's backtracking matcher in C, where the
 * instruction budget's count hook never fires: `string.find(text, "(.-)(.-)x")` on a long
 * text would hold the writer thread for hours. The sandbox (lua_sandbox.c) therefore asks
 * this module for an upper bound on the matcher's steps and charges it to the budget first.
 *
 * The bound follows how the matcher works. An attempt starts at every position of the subject
 * (only the first when the pattern is anchored with ^; only where the pattern's leading
 * literal text or first character class occurs, when it has one). Within an attempt, each
 * repeated item (x*, x+, x-) may be tried at every length up to the longest run of characters
 * its class matches anywhere in the subject, and every combination of the repeated items may
 * be tried: the steps of one attempt are at most the product of (longest run + 1) over the
 * repeated items, times 2 per optional item (x?), times the number of items. %b and
 * back-references (%1) count as repeating over the whole subject. So `%s+` on prose costs a
 * few steps per position, while `(.-)x` on a text without an x costs the square of its length,
 * and the estimate says so.
 *
 * Character classes are evaluated with the C library's ctype functions, as Lua's own matcher
 * does, so the estimate sees the same classes. Pure functions; no Lua state involved.
 */
#ifndef VOC_LUA_PATTERN_H
#define VOC_LUA_PATTERN_H

#include <stdbool.h>
#include <stddef.h>

/* Does the pattern use any special character (^$*+?.([%-)? A pattern without them is plain
 * text, and string.find looks it up as such. */
bool voc_pattern_has_specials(const char *p, size_t m);

/* Estimate the work of matching pattern p (m bytes) against subject s (n bytes, the part from
 * the starting position on). `anchor`: a leading '^' anchors the pattern (find, match, gsub;
 * gmatch takes it literally): at most how many steps, in *total (start positions times the
 * steps of one attempt, plus a step per position). Stops measuring once the total passes
 * `limit` (the result is then some value above it). Returns 0, or -1 with Lua's message for a
 * malformed pattern
 * ("malformed pattern (missing ']')") in err. */
int voc_pattern_cost(const char *s, size_t n, const char *p, size_t m, bool anchor, double limit,
                     double *total, char *err, size_t errsize);

/* The work of looking up plain text p in s (string.find with plain = true, or a pattern
 * without specials): a fast scan for p's first byte, then a comparison of up to m bytes at
 * each place it occurs. */
void voc_pattern_plain_cost(const char *s, size_t n, const char *p, size_t m, double *total);

#endif
