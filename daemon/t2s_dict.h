/* The keys of an OpenCC conversion's dictionaries, read through OpenCC's own loader.
 *
 * textnorm uses them to run OpenCC only on the stretches of a text that a dictionary key can
 * match: a character that appears in no key can neither start nor be part of a match, so the
 * text splits there without changing what OpenCC would produce (see textnorm.c). The C API
 * of OpenCC has no way to list keys; OpenCC's C++ classes do, hence this one C++ file.
 */
#ifndef VOC_T2S_DICT_H
#define VOC_T2S_DICT_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Load the OpenCC configuration at `config_path` (e.g. /usr/share/opencc/t2s.json) and return
 * every key of its segmentation and conversion dictionaries as malloc'd UTF-8 strings in
 * *keys (a malloc'd array of *count), duplicates included. Returns 0, or -1 with *err
 * (malloc'd) saying why. */
int voc_t2s_dict_keys(const char *config_path, char ***keys, size_t *count, char **err);

/* Free what voc_t2s_dict_keys returned. */
void voc_t2s_dict_keys_free(char **keys, size_t count);

#ifdef __cplusplus
}
#endif

#endif
