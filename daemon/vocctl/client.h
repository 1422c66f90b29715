/* vocctl's HTTP side: one request to vocd over libcurl, and the API's error convention
 * (docs/api.md, "Errors") turned into messages on stderr. */
#ifndef VOC_CTL_CLIENT_H
#define VOC_CTL_CLIENT_H

#include <jansson.h>
#include <stddef.h>

#include "vocctl.h"

struct voc_ctl_response {
    long status;
    char *body; /* NUL-terminated; empty when a 2xx body went to a sink */
    size_t len;
    unsigned long long sunk; /* bytes written to the sink */
    char content_type[128];
    char retry_after[32];
};

/* A path with a query string, built piece by piece; values are URL-escaped. */
struct voc_ctl_path {
    char *text;
    size_t len;
    size_t cap;
    int failed; /* out of memory somewhere on the way */
};

void voc_ctl_path_init(struct voc_ctl_path *p, const char *path);
/* Append "?key=value" or "&key=value"; a NULL value appends nothing. */
void voc_ctl_path_query(struct voc_ctl_path *p, const char *key, const char *value);
void voc_ctl_path_free(struct voc_ctl_path *p);

/* Send `method` to ctl->url + path, with `body` as JSON (NULL: none). When sink_fd >= 0
 * a 2xx body is written there as it arrives (an error body is still kept in memory for
 * the message); sink_name names it in a write error. Returns 0 when vocd answered,
 * whatever the status, or 1 after printing why there is no answer (cannot connect, write
 * error on the sink ...). */
int voc_ctl_request(struct voc_ctl *ctl, const char *method, const char *path, const json_t *body,
                    int sink_fd, const char *sink_name, struct voc_ctl_response *resp);
void voc_ctl_response_free(struct voc_ctl_response *resp);

/* Print a non-2xx answer as "vocctl: <code>: <message>", then each of error.details on
 * its own line (reload's file:line problems). Returns 1. */
int voc_ctl_print_error(const struct voc_ctl_response *resp);

/* The common case: send, require 2xx, parse the JSON body. Returns 0 with *out (new
 * reference) and, when raw is not NULL, the response (for --json output; free it), or 1
 * after printing the problem. */
int voc_ctl_call(struct voc_ctl *ctl, const char *method, const char *path, const json_t *body,
                 json_t **out, struct voc_ctl_response *raw);

/* --json output: the body as the server sent it, with a final newline. */
void voc_ctl_print_raw(const struct voc_ctl_response *resp);

#endif
