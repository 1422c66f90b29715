/* Helpers shared by the unit suites (header only: each test_*.c is its own program). */
#ifndef VOC_TEST_UTIL_H
#define VOC_TEST_UTIL_H

#ifndef _GNU_SOURCE
#error "define _GNU_SOURCE before any include: nftw needs it"
#endif

#include <ftw.h>
#include <stdio.h>
#include <sys/stat.h>

static inline int voc_test_rm_entry(const char *path, const struct stat *st, int flag,
                                    struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* rm -rf dir (a test's temporary folder). */
static inline void voc_test_rm_rf(const char *dir)
{
    nftw(dir, voc_test_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
