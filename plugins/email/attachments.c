#include "attachments.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int mkdir_p(const char *path)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        char saved = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, 0750) != 0 && errno != EEXIST)
            return -1;
        buf[i] = saved;
    }
    return 0;
}

int voc_attach_init(const char *root)
{
    return mkdir_p(root);
}

int voc_attach_path(const char *root, const char *hex, char *buf, size_t buflen)
{
    if (strlen(hex) != 64)
        return -1;
    for (int i = 0; i < 64; i++)
        if (!isxdigit((unsigned char)hex[i]) || isupper((unsigned char)hex[i]))
            return -1;
    int n = snprintf(buf, buflen, "%s/%.2s/%s", root, hex, hex + 2);
    return n < 0 || (size_t)n >= buflen ? -1 : 0;
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

static int write_all(int fd, const unsigned char *p, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

int voc_attach_put(const char *root, const void *data, size_t len, char hex[65], bool *stored,
                   char *err, size_t errlen)
{
    if (stored)
        *stored = false;
    GChecksum *sum = g_checksum_new(G_CHECKSUM_SHA256);
    g_checksum_update(sum, data, (gssize)len);
    snprintf(hex, 65, "%s", g_checksum_get_string(sum));
    g_checksum_free(sum);

    char dir[4096], path[4200], tmp[4300];
    if ((size_t)snprintf(dir, sizeof dir, "%s/%.2s", root, hex) >= sizeof dir ||
        voc_attach_path(root, hex, path, sizeof path) != 0) {
        errno = ENAMETOOLONG;
        snprintf(err, errlen, "attachment path too long");
        return -1;
    }
    struct stat st;
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size == len)
        return 0; /* content-addressed: the same name is the same bytes */
    bool new_dir = false;
    if (mkdir(dir, 0750) == 0) {
        new_dir = true;
    } else if (errno != EEXIST) {
        int e = errno;
        snprintf(err, errlen, "cannot create %s: %s", dir, strerror(e));
        errno = e;
        return -1;
    }
    static unsigned counter;
    snprintf(tmp, sizeof tmp, "%s/.tmp.%ld.%u", dir, (long)getpid(), counter++);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "cannot create %s: %s", tmp, strerror(e));
        errno = e;
        return -1;
    }
    if (write_all(fd, data, len) != 0 || fsync(fd) != 0) {
        int e = errno;
        close(fd);
        unlink(tmp);
        snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(e));
        errno = e;
        return -1;
    }
    if (close(fd) != 0 || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        snprintf(err, errlen, "cannot store %s: %s", path, strerror(e));
        errno = e;
        return -1;
    }
    /* the rename is durable only once the folder is; a new folder needs its parent too */
    if (fsync_dir(dir) != 0 || (new_dir && fsync_dir(root) != 0)) {
        int e = errno;
        snprintf(err, errlen, "cannot sync %s: %s", dir, strerror(e));
        errno = e;
        return -1;
    }
    if (stored)
        *stored = true;
    return 0;
}
