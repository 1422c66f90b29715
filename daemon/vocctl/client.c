#define _GNU_SOURCE /* asprintf, vasprintf */
#include "client.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "output.h"
#include "version.h"

/* A JSON answer bigger than this is not something vocd sends; stop instead of eating all
 * memory when the URL points at something else. Sunk bodies (backup) have no limit. */
#define MAX_MEMORY_BODY (256u * 1024 * 1024)
#define CONNECT_TIMEOUT_S 10L

void voc_ctl_path_init(struct voc_ctl_path *p, const char *path)
{
    memset(p, 0, sizeof *p);
    p->cap = strlen(path) + 64;
    p->text = malloc(p->cap);
    if (!p->text) {
        p->failed = 1;
        return;
    }
    p->len = strlen(path);
    memcpy(p->text, path, p->len + 1);
}

static void path_append(struct voc_ctl_path *p, const char *s, size_t n)
{
    if (p->failed)
        return;
    if (p->len + n + 1 > p->cap) {
        size_t cap = (p->len + n + 1) * 2;
        char *grown = realloc(p->text, cap);
        if (!grown) {
            p->failed = 1;
            return;
        }
        p->text = grown;
        p->cap = cap;
    }
    memcpy(p->text + p->len, s, n);
    p->len += n;
    p->text[p->len] = '\0';
}

void voc_ctl_path_query(struct voc_ctl_path *p, const char *key, const char *value)
{
    if (!value || p->failed)
        return;
    /* curl_easy_escape ignores its handle argument since 7.82; NULL keeps this usable
     * before any request handle exists. */
    char *escaped = curl_easy_escape(NULL, value, 0);
    if (!escaped) {
        p->failed = 1;
        return;
    }
    path_append(p, strchr(p->text, '?') ? "&" : "?", 1);
    path_append(p, key, strlen(key));
    path_append(p, "=", 1);
    path_append(p, escaped, strlen(escaped));
    curl_free(escaped);
}

void voc_ctl_path_free(struct voc_ctl_path *p)
{
    free(p->text);
    memset(p, 0, sizeof *p);
}

struct transfer {
    struct voc_ctl_response *resp;
    CURL *curl;
    int sink_fd;
    size_t cap;
    int sink_errno; /* a failed write(2) on the sink */
    int too_big;
};

static int body_append(struct transfer *t, const char *data, size_t n)
{
    struct voc_ctl_response *r = t->resp;
    if (r->len + n > MAX_MEMORY_BODY) {
        t->too_big = 1;
        return -1;
    }
    if (r->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 4096;
        while (cap < r->len + n + 1)
            cap *= 2;
        char *grown = realloc(r->body, cap);
        if (!grown)
            return -1;
        r->body = grown;
        t->cap = cap;
    }
    memcpy(r->body + r->len, data, n);
    r->len += n;
    r->body[r->len] = '\0';
    return 0;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    struct transfer *t = arg;
    size_t n = size * nmemb;
    if (t->sink_fd >= 0) {
        /* The headers are complete before the first body byte, so the status is known:
         * only a successful body goes to the sink, an error body stays for the message. */
        long status = 0;
        curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &status);
        if (status >= 200 && status < 300) {
            size_t done = 0;
            while (done < n) {
                ssize_t w = write(t->sink_fd, data + done, n - done);
                if (w < 0) {
                    if (errno == EINTR)
                        continue;
                    t->sink_errno = errno;
                    return 0;
                }
                done += (size_t)w;
            }
            t->resp->sunk += n;
            return n;
        }
    }
    return body_append(t, data, n) == 0 ? n : 0;
}

/* Copy a header's value (trimmed) if the line is "name: value". */
static void header_value(const char *line, size_t n, const char *name, char *out, size_t cap)
{
    size_t name_len = strlen(name);
    if (n <= name_len || strncasecmp(line, name, name_len) != 0 || line[name_len] != ':')
        return;
    const char *v = line + name_len + 1;
    const char *end = line + n;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
        end--;
    size_t len = (size_t)(end - v);
    if (len >= cap)
        len = cap - 1;
    memcpy(out, v, len);
    out[len] = '\0';
}

static size_t on_header(char *line, size_t size, size_t nmemb, void *arg)
{
    struct transfer *t = arg;
    size_t n = size * nmemb;
    header_value(line, n, "Content-Type", t->resp->content_type, sizeof t->resp->content_type);
    header_value(line, n, "Retry-After", t->resp->retry_after, sizeof t->resp->retry_after);
    return n;
}

static void transport_error(struct voc_ctl *ctl, CURLcode rc, const char *errbuf,
                            const struct transfer *t, const char *sink_name)
{
    const char *why = errbuf[0] ? errbuf : curl_easy_strerror(rc);
    switch (rc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
        voc_ctl_error("cannot connect to %s: %s", ctl->url, why);
        return;
    case CURLE_WRITE_ERROR:
        if (t->sink_errno) {
            voc_ctl_error("cannot write %s: %s", sink_name ? sink_name : "the output",
                          strerror(t->sink_errno));
            return;
        }
        if (t->too_big) {
            voc_ctl_error("the answer from %s is larger than %u MiB; is this vocd?", ctl->url,
                          MAX_MEMORY_BODY / (1024 * 1024));
            return;
        }
        voc_ctl_error("out of memory");
        return;
    default:
        voc_ctl_error("request to %s failed: %s", ctl->url, why);
        return;
    }
}

int voc_ctl_request(struct voc_ctl *ctl, const char *method, const char *path, const json_t *body,
                    int sink_fd, const char *sink_name, struct voc_ctl_response *resp)
{
    int ret = 1;
    char *url = NULL;
    char *payload = NULL;
    char *auth = NULL;
    struct curl_slist *headers = NULL;
    char errbuf[CURL_ERROR_SIZE] = "";
    memset(resp, 0, sizeof *resp);
    struct transfer t = {.resp = resp, .sink_fd = sink_fd};

    if (!ctl->curl && !(ctl->curl = curl_easy_init())) {
        voc_ctl_error("cannot initialise libcurl");
        return 1;
    }
    /* Reset, not a new handle: the connection cache survives, so paging through a long
     * list stays on one connection. */
    curl_easy_reset(ctl->curl);
    t.curl = ctl->curl;
    if (asprintf(&url, "%s%s", ctl->url, path) < 0) {
        url = NULL;
        goto oom;
    }
    if (ctl->token) {
        if (asprintf(&auth, "Authorization: Bearer %s", ctl->token) < 0) {
            auth = NULL;
            goto oom;
        }
        headers = curl_slist_append(headers, auth);
    }
    /* vocd answers at once; a 100-continue round trip would only add latency. */
    headers = curl_slist_append(headers, "Expect:");
    if (body) {
        payload = json_dumps(body, JSON_COMPACT);
        if (!payload)
            goto oom;
        headers = curl_slist_append(headers, "Content-Type: application/json; charset=utf-8");
    }
    if (!headers)
        goto oom;

    CURL *c = ctl->curl;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "vocctl/" VOC_VERSION);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT_S);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(c, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    } else {
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, payload ? payload : "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, payload ? (long)strlen(payload) : 0L);
        if (strcmp(method, "POST") != 0)
            curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    }

    CURLcode rc = curl_easy_perform(c);
    if (rc != CURLE_OK) {
        transport_error(ctl, rc, errbuf, &t, sink_name);
        goto done;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
    if (!resp->body) {
        resp->body = strdup("");
        if (!resp->body)
            goto oom;
    }
    ret = 0;
    goto done;

oom:
    voc_ctl_error("out of memory");
done:
    if (ret != 0)
        voc_ctl_response_free(resp);
    curl_slist_free_all(headers);
    free(auth);
    free(payload);
    free(url);
    return ret;
}

void voc_ctl_response_free(struct voc_ctl_response *resp)
{
    free(resp->body);
    resp->body = NULL;
    resp->len = 0;
}

int voc_ctl_print_error(const struct voc_ctl_response *resp)
{
    json_t *doc = resp->len ? json_loadb(resp->body, resp->len, 0, NULL) : NULL;
    json_t *error = json_object_get(doc, "error");
    const char *code = json_string_value(json_object_get(error, "code"));
    const char *message = json_string_value(json_object_get(error, "message"));
    if (code && message) {
        char *clean = voc_ctl_clean(message, false);
        if (resp->retry_after[0])
            voc_ctl_error("%s: %s (retry after %s s)", code, clean ? clean : message,
                          resp->retry_after);
        else
            voc_ctl_error("%s: %s", code, clean ? clean : message);
        free(clean);
        size_t i;
        json_t *detail;
        json_array_foreach(json_object_get(error, "details"), i, detail) {
            const char *text = json_string_value(detail);
            char *line = voc_ctl_clean(text ? text : "", false);
            fprintf(stderr, "%s\n", line ? line : "");
            free(line);
        }
    } else {
        /* Not vocd's error format (a proxy in between, or the wrong URL): show the status
         * and the start of whatever came back. */
        char *first = NULL;
        if (resp->len) {
            size_t n = strcspn(resp->body, "\r\n");
            char *line = strndup(resp->body, n);
            first = line ? voc_ctl_clip(line, 200) : NULL;
            free(line);
        }
        if (first && first[0])
            voc_ctl_error("HTTP %ld: %s", resp->status, first);
        else
            voc_ctl_error("HTTP %ld", resp->status);
        free(first);
    }
    json_decref(doc);
    return 1;
}

int voc_ctl_call(struct voc_ctl *ctl, const char *method, const char *path, const json_t *body,
                 json_t **out, struct voc_ctl_response *raw)
{
    struct voc_ctl_response resp;
    *out = NULL;
    if (raw)
        memset(raw, 0, sizeof *raw);
    if (voc_ctl_request(ctl, method, path, body, -1, NULL, &resp) != 0)
        return 1;
    if (resp.status < 200 || resp.status > 299) {
        voc_ctl_print_error(&resp);
        voc_ctl_response_free(&resp);
        return 1;
    }
    json_error_t jerr;
    *out = json_loadb(resp.body, resp.len, 0, &jerr);
    if (!*out) {
        voc_ctl_error("vocd sent invalid JSON (HTTP %ld): %s at line %d, column %d", resp.status,
                      jerr.text, jerr.line, jerr.column);
        voc_ctl_response_free(&resp);
        return 1;
    }
    if (raw)
        *raw = resp;
    else
        voc_ctl_response_free(&resp);
    return 0;
}

void voc_ctl_print_raw(const struct voc_ctl_response *resp)
{
    fwrite(resp->body, 1, resp->len, stdout);
    if (resp->len == 0 || resp->body[resp->len - 1] != '\n')
        fputc('\n', stdout);
}
