/* libcurl's multi interface driven by the daemon's libevent loop: one event per socket curl
 * wants watched, one timer for curl's own timeouts, and a callback per finished transfer.
 * Everything runs on the loop thread; nothing here blocks. */
#ifndef VOC_CURL_LOOP_H
#define VOC_CURL_LOOP_H

#include <curl/curl.h>
#include <stddef.h>

struct event_base;
struct voc_curl_loop;

/* A transfer ended: `result` is curl's code (CURLE_OK = the protocol exchange completed;
 * for HTTP look at CURLINFO_RESPONSE_CODE). The handle has left the multi handle; the
 * callback owns it again (curl_easy_cleanup). At voc_curl_loop_free, unfinished transfers
 * end with CURLE_ABORTED_BY_CALLBACK. */
typedef void (*voc_curl_done_cb)(CURL *easy, CURLcode result, void *arg);

int voc_curl_loop_new(struct voc_curl_loop **out, struct event_base *base);
/* Start a configured easy handle (the loop uses its CURLOPT_PRIVATE). Returns 0, or -1
 * when curl refused it (cb will not be called, the caller keeps the handle). */
int voc_curl_loop_add(struct voc_curl_loop *loop, CURL *easy, voc_curl_done_cb cb, void *arg);
/* Transfers started and not finished. */
size_t voc_curl_loop_active(const struct voc_curl_loop *loop);
/* Abort what is still running (each callback is called), close connections, free. */
void voc_curl_loop_free(struct voc_curl_loop *loop);

#endif
