/* libcurl multi on the libevent loop (daemon/curl_loop.[ch]) against a loopback HTTP server
 * in a thread: parallel transfers finish with their own results, curl's timeouts fire
 * through the loop's timer, a refused connection is reported, and transfers still running
 * at free end in their callback (so their owners can free them; ASan checks the rest). */
#include "curl_loop.h"

#include <arpa/inet.h>
#include <check.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* ---- a tiny HTTP server: /ok answers 200, /teapot 418, /hang never answers ---- */

static int listen_fd = -1;
static int port;
static pthread_t server_thread;
static int hung[16];
static int hung_count;
static pthread_mutex_t hung_lock = PTHREAD_MUTEX_INITIALIZER;

static void *serve(void *arg)
{
    (void)arg;
    for (;;) {
        int fd = accept(listen_fd, NULL, NULL);
        if (fd < 0)
            return NULL;
        char buf[4096];
        size_t len = 0;
        ssize_t n;
        while (len < sizeof buf - 1 && (n = read(fd, buf + len, sizeof buf - 1 - len)) > 0) {
            len += (size_t)n;
            buf[len] = '\0';
            if (strstr(buf, "\r\n\r\n"))
                break;
        }
        if (strncmp(buf, "GET /hang", 9) == 0) {
            pthread_mutex_lock(&hung_lock);
            if (hung_count < 16)
                hung[hung_count++] = fd;
            else
                close(fd);
            pthread_mutex_unlock(&hung_lock);
            continue;
        }
        const char *reply = strncmp(buf, "GET /teapot", 11) == 0
                                ? "HTTP/1.1 418 I'm a teapot\r\nContent-Length: 0\r\n"
                                  "Connection: close\r\n\r\n"
                                : "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                                  "Connection: close\r\n\r\nok";
        ssize_t w = write(fd, reply, strlen(reply));
        (void)w;
        close(fd);
    }
}

static void server_start(void)
{
    listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(listen_fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(bind(listen_fd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(listen(listen_fd, 16), 0);
    socklen_t alen = sizeof a;
    getsockname(listen_fd, (struct sockaddr *)&a, &alen);
    port = ntohs(a.sin_port);
    pthread_create(&server_thread, NULL, serve, NULL);
}

static void server_stop(void)
{
    shutdown(listen_fd, SHUT_RDWR);
    close(listen_fd);
    pthread_join(server_thread, NULL);
    for (int i = 0; i < hung_count; i++)
        close(hung[i]);
    hung_count = 0;
}

/* ---- transfers ---- */

struct result {
    bool done;
    CURLcode code;
    long status;
    char body[64];
    size_t body_len;
};

static struct event_base *base;
static int done_count, done_wanted;

static size_t keep(char *data, size_t size, size_t nmemb, void *arg)
{
    struct result *r = arg;
    size_t n = size * nmemb;
    size_t take = n < sizeof r->body - 1 - r->body_len ? n : sizeof r->body - 1 - r->body_len;
    memcpy(r->body + r->body_len, data, take);
    r->body_len += take;
    return n;
}

static void on_done(CURL *easy, CURLcode code, void *arg)
{
    struct result *r = arg;
    ck_assert(!r->done); /* once */
    r->done = true;
    r->code = code;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_cleanup(easy);
    if (++done_count == done_wanted)
        event_base_loopexit(base, NULL);
}

static CURL *request(const char *path, struct result *r, long timeout_ms, int to_port)
{
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", to_port, path);
    CURL *easy = curl_easy_init();
    curl_easy_setopt(easy, CURLOPT_URL, url);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, keep);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, r);
    return easy;
}

static void run_loop(void)
{
    /* A guard: a broken loop must fail the test, not hang it. */
    struct timeval limit = {10, 0};
    event_base_loopexit(base, &limit);
    event_base_dispatch(base);
}

static void setup(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    base = event_base_new();
    done_count = 0;
    server_start();
}

static void teardown(void)
{
    server_stop();
    event_base_free(base);
    curl_global_cleanup();
}

START_TEST(parallel_transfers_finish)
{
    struct voc_curl_loop *loop;
    ck_assert_int_eq(voc_curl_loop_new(&loop, base), 0);
    struct result r[5] = {0};
    const char *paths[5] = {"/ok", "/teapot", "/ok", "/ok", "/teapot"};
    done_wanted = 5;
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(
            voc_curl_loop_add(loop, request(paths[i], &r[i], 5000, port), on_done, &r[i]), 0);
    ck_assert_uint_eq(voc_curl_loop_active(loop), 5);
    run_loop();
    for (int i = 0; i < 5; i++) {
        ck_assert(r[i].done);
        ck_assert_int_eq(r[i].code, CURLE_OK);
        ck_assert_int_eq(r[i].status, strcmp(paths[i], "/ok") == 0 ? 200 : 418);
    }
    ck_assert_str_eq(r[0].body, "ok");
    ck_assert_uint_eq(voc_curl_loop_active(loop), 0);
    voc_curl_loop_free(loop);
}
END_TEST

START_TEST(timeout_fires_through_the_loop)
{
    struct voc_curl_loop *loop;
    ck_assert_int_eq(voc_curl_loop_new(&loop, base), 0);
    struct result hang = {0}, ok = {0};
    done_wanted = 2;
    ck_assert_int_eq(voc_curl_loop_add(loop, request("/hang", &hang, 300, port), on_done, &hang),
                     0);
    ck_assert_int_eq(voc_curl_loop_add(loop, request("/ok", &ok, 5000, port), on_done, &ok), 0);
    struct timeval t0, t1;
    gettimeofday(&t0, NULL);
    run_loop();
    gettimeofday(&t1, NULL);
    ck_assert(hang.done && ok.done);
    ck_assert_int_eq(hang.code, CURLE_OPERATION_TIMEDOUT);
    ck_assert_int_eq(ok.code, CURLE_OK);
    double took = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_usec - t0.tv_usec) / 1e6;
    ck_assert_msg(took >= 0.25 && took < 5, "took %.3fs", took);
    voc_curl_loop_free(loop);
}
END_TEST

START_TEST(refused_connection_is_reported)
{
    /* A port that was just free: bound and closed again, nobody listens. */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(s, (struct sockaddr *)&a, sizeof a);
    socklen_t alen = sizeof a;
    getsockname(s, (struct sockaddr *)&a, &alen);
    int closed_port = ntohs(a.sin_port);
    close(s);

    struct voc_curl_loop *loop;
    ck_assert_int_eq(voc_curl_loop_new(&loop, base), 0);
    struct result r = {0};
    done_wanted = 1;
    ck_assert_int_eq(voc_curl_loop_add(loop, request("/ok", &r, 5000, closed_port), on_done, &r),
                     0);
    run_loop();
    ck_assert(r.done);
    ck_assert_int_eq(r.code, CURLE_COULDNT_CONNECT);
    voc_curl_loop_free(loop);
}
END_TEST

START_TEST(free_aborts_running_transfers)
{
    struct voc_curl_loop *loop;
    ck_assert_int_eq(voc_curl_loop_new(&loop, base), 0);
    struct result r[3] = {0};
    done_wanted = 100; /* the loop must not stop on its own */
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(
            voc_curl_loop_add(loop, request("/hang", &r[i], 30000, port), on_done, &r[i]), 0);
    /* Let the requests reach the server, then stop the loop with them still open. */
    for (int spins = 0; spins < 200; spins++) {
        event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        pthread_mutex_lock(&hung_lock);
        int n = hung_count;
        pthread_mutex_unlock(&hung_lock);
        if (n == 3)
            break;
        usleep(10000);
    }
    ck_assert_int_eq(hung_count, 3);
    ck_assert_uint_eq(voc_curl_loop_active(loop), 3);
    voc_curl_loop_free(loop);
    for (int i = 0; i < 3; i++) {
        ck_assert(r[i].done);
        ck_assert_int_eq(r[i].code, CURLE_ABORTED_BY_CALLBACK);
    }
}
END_TEST

static Suite *curl_loop_suite(void)
{
    Suite *s = suite_create("curl_loop");
    TCase *tc = tcase_create("curl_loop");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, parallel_transfers_finish);
    tcase_add_test(tc, timeout_fires_through_the_loop);
    tcase_add_test(tc, refused_connection_is_reported);
    tcase_add_test(tc, free_aborts_running_transfers);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(curl_loop_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
