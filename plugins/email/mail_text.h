/* Text from mail parts: any charset iconv knows to clean UTF-8, and HTML to readable text.
 * Both are pure functions over bounded input, used by mime_parse.c and unit-tested alone. */
#ifndef VOC_MAIL_TEXT_H
#define VOC_MAIL_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/* Convert `len` bytes in `charset` (a MIME charset name; NULL or "" = not declared) to
 * UTF-8. Chinese labels are widened to the supersets mailers really use (GB2312/GBK ->
 * GB18030, Big5 -> CP950, then Big5-HKSCS). When the declared charset fails, valid UTF-8 is
 * taken as is, then each of `fallbacks` (NULL-terminated) is tried; as a last resort the
 * bytes are converted lossily with U+FFFD for what cannot be decoded. Never fails except
 * out of memory (NULL). The result is NUL-terminated, its length in *out_len. *lossy (may
 * be NULL) tells whether replacement characters were inserted. */
char *voc_mail_to_utf8(const char *data, size_t len, const char *charset,
                       const char *const *fallbacks, size_t *out_len, bool *lossy);

/* RFC 2047 encoded words in a raw header value, re-encoded as UTF-8 words so that GMime
 * decodes them without loss. GMime hands a word's charset label to iconv as it is (gb2312 as
 * GBK, big5 as BIG5), so a GB18030 four-byte character in a "gb2312" word, or a Big5-HKSCS
 * one in a "big5" word, would come out as '?'. Here the bytes of a run of adjacent words
 * with the same label (a character may be split between two words) are joined and converted
 * with voc_mail_to_utf8 — the same widened labels and fallbacks as bodies — and the run is
 * replaced by one "=?UTF-8?Q?...?=" word. Everything else stays byte for byte. Returns a
 * malloc'd string, or NULL when there is no word to re-encode (none, or only UTF-8 and
 * ASCII ones): then the value can go to GMime as it is. */
char *voc_mail_header_widen(const char *raw, const char *const *fallbacks);

/* Normalise UTF-8 text in place for storage: CRLF and lone CR become LF, NUL and other C0
 * controls except TAB and LF are dropped, trailing blank lines are removed. Then cut to at
 * most `max` bytes on a character boundary (max 0 = no limit). Returns the new length and
 * sets *truncated (may be NULL) when it cut. */
size_t voc_mail_clean_text(char *text, size_t len, size_t max, bool *truncated);

/* Readable text from UTF-8 HTML: tags removed; script, style, head metadata and comments
 * dropped; entities decoded; line breaks for <br>, <p>, <div>, <li>, <tr>, headings and the
 * like; runs of white space collapsed outside <pre>. Linear in the input, output at most
 * `max_out` bytes (0 = no limit). Returns a NUL-terminated malloc'd string, NULL when out of
 * memory. */
char *voc_html_to_text(const char *html, size_t len, size_t max_out, size_t *out_len);

/* The charset a <meta charset> or <meta http-equiv content="...; charset=..."> in the first
 * 2 KiB of `html` declares, copied into buf (NUL-terminated), or false. */
bool voc_html_sniff_charset(const char *html, size_t len, char *buf, size_t buflen);

#endif
