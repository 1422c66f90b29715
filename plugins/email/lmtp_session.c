#include "lmtp_session.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* RFC 5321 allows 512 octets per command line; parameters and long addresses need some
 * slack, and more than this is an attack or a broken client. */
#define MAX_COMMAND_LINE 4096
#define MAX_ADDRESS 1024

enum phase {
    PH_GREETED,  /* before LHLO */
    PH_READY,    /* LHLO done, no transaction */
    PH_MAIL,     /* MAIL accepted, RCPTs may follow */
    PH_DATA,     /* reading message data */
    PH_WAITING,  /* message handed over, waiting for voc_lmtp_reply */
    PH_DONE,
};

/* Where the data reader is within a line (for dot-unstuffing and the final ".") */
enum data_state { DS_LINE_START, DS_DOT, DS_DOT_CR, DS_MID, DS_CR };

struct voc_lmtp_session {
    struct voc_lmtp_config cfg;
    char *hostname;
    struct voc_lmtp_callbacks cb;
    void *arg;
    enum phase phase;
    unsigned errors;

    char line[MAX_COMMAND_LINE + 1];
    size_t line_len;
    bool line_overflow;

    char *helo;
    char *sender;
    char **rcpts;
    size_t rcpt_count;

    enum data_state ds;
    char *data;
    size_t data_len, data_cap;
    bool too_big;
};

static void say(struct voc_lmtp_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void say(struct voc_lmtp_session *s, const char *fmt, ...)
{
    char buf[1200];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf - 2, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof buf - 3)
        n = (int)(sizeof buf - 3);
    buf[n++] = '\r';
    buf[n++] = '\n';
    s->cb.write(s->arg, buf, (size_t)n);
}

struct voc_lmtp_session *voc_lmtp_new(const struct voc_lmtp_config *cfg,
                                      const struct voc_lmtp_callbacks *cb, void *arg)
{
    struct voc_lmtp_session *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->cfg = *cfg;
    s->hostname = strdup(cfg->hostname && cfg->hostname[0] ? cfg->hostname : "localhost");
    if (!s->hostname) {
        free(s);
        return NULL;
    }
    s->cfg.hostname = s->hostname;
    if (!s->cfg.max_recipients)
        s->cfg.max_recipients = 100;
    if (!s->cfg.max_errors)
        s->cfg.max_errors = 20;
    s->cb = *cb;
    s->arg = arg;
    s->phase = PH_GREETED;
    return s;
}

static void reset_transaction(struct voc_lmtp_session *s)
{
    free(s->sender);
    s->sender = NULL;
    for (size_t i = 0; i < s->rcpt_count; i++)
        free(s->rcpts[i]);
    free(s->rcpts);
    s->rcpts = NULL;
    s->rcpt_count = 0;
    free(s->data);
    s->data = NULL;
    s->data_len = s->data_cap = 0;
    s->too_big = false;
}

void voc_lmtp_free(struct voc_lmtp_session *s)
{
    if (!s)
        return;
    reset_transaction(s);
    free(s->helo);
    free(s->hostname);
    free(s);
}

void voc_lmtp_greet(struct voc_lmtp_session *s)
{
    say(s, "220 %s LMTP vocd ready", s->hostname);
}

bool voc_lmtp_paused(const struct voc_lmtp_session *s)
{
    return s->phase == PH_WAITING;
}

bool voc_lmtp_finished(const struct voc_lmtp_session *s)
{
    return s->phase == PH_DONE;
}

static void finish(struct voc_lmtp_session *s)
{
    s->phase = PH_DONE;
    if (s->cb.close)
        s->cb.close(s->arg);
}

void voc_lmtp_shutdown(struct voc_lmtp_session *s, const char *text)
{
    if (s->phase == PH_DONE)
        return;
    say(s, "421 4.3.2 %s %s", s->hostname, text);
    finish(s);
}

static void bad_command(struct voc_lmtp_session *s, const char *reply)
{
    say(s, "%s", reply);
    if (++s->errors >= s->cfg.max_errors) {
        say(s, "421 4.7.0 %s too many errors, closing", s->hostname);
        finish(s);
    }
}

/* ---- data ---------------------------------------------------------------------------------- */

static bool data_reserve(struct voc_lmtp_session *s, size_t more)
{
    if (s->data_len + more <= s->data_cap)
        return true;
    size_t cap = s->data_cap ? s->data_cap : 16384;
    while (cap < s->data_len + more)
        cap *= 2;
    char *n = realloc(s->data, cap);
    if (!n)
        return false;
    s->data = n;
    s->data_cap = cap;
    return true;
}

static void data_put(struct voc_lmtp_session *s, const char *p, size_t n)
{
    if (s->too_big || n == 0)
        return;
    if (s->cfg.max_size && s->data_len + n > s->cfg.max_size) {
        /* keep reading to the end of the data, keep nothing */
        s->too_big = true;
        free(s->data);
        s->data = NULL;
        s->data_len = s->data_cap = 0;
        return;
    }
    if (!data_reserve(s, n)) {
        s->too_big = true; /* out of memory: answered like an over-size message */
        return;
    }
    memcpy(s->data + s->data_len, p, n);
    s->data_len += n;
}

static void each_recipient(struct voc_lmtp_session *s, int code, const char *enhanced,
                           const char *text)
{
    for (size_t i = 0; i < s->rcpt_count; i++)
        say(s, "%d %s <%s> %s", code, enhanced, s->rcpts[i], text);
}

static void data_complete(struct voc_lmtp_session *s)
{
    if (s->too_big) {
        char text[160];
        snprintf(text, sizeof text, "message exceeds the size limit of %llu bytes",
                 (unsigned long long)s->cfg.max_size);
        each_recipient(s, 552, "5.3.4", text);
        reset_transaction(s);
        s->phase = PH_READY;
        return;
    }
    s->phase = PH_WAITING;
    struct voc_lmtp_message msg = {
        .helo = s->helo ? s->helo : "",
        .sender = s->sender ? s->sender : "",
        .recipients = (const char *const *)s->rcpts,
        .recipient_count = s->rcpt_count,
        .data = s->data ? s->data : "",
        .len = s->data_len,
    };
    s->cb.message(s->arg, &msg);
}

void voc_lmtp_reply(struct voc_lmtp_session *s, int code, const char *enhanced,
                    const char *text)
{
    if (s->phase != PH_WAITING)
        return;
    each_recipient(s, code, enhanced, text);
    reset_transaction(s);
    s->phase = PH_READY;
}

/* Read message data; returns bytes consumed. Ends at CRLF "." CRLF only: a bare LF never
 * ends the data, so a message cannot smuggle a second one past an MTA that disagrees. */
static size_t feed_data(struct voc_lmtp_session *s, const char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        char c = p[i];
        switch (s->ds) {
        case DS_MID: {
            /* fast path: copy up to the next CR */
            const char *cr = memchr(p + i, '\r', n - i);
            size_t end = cr ? (size_t)(cr - p) : n;
            data_put(s, p + i, end - i);
            i = end;
            if (cr) {
                data_put(s, "\r", 1);
                s->ds = DS_CR;
                i++;
            }
            continue;
        }
        case DS_CR:
            if (c == '\n') {
                data_put(s, "\n", 1);
                s->ds = DS_LINE_START;
            } else if (c == '\r') {
                data_put(s, "\r", 1);
            } else {
                data_put(s, &c, 1);
                s->ds = DS_MID;
            }
            i++;
            continue;
        case DS_LINE_START:
            if (c == '.') {
                s->ds = DS_DOT;
                i++;
            } else {
                s->ds = DS_MID;
            }
            continue;
        case DS_DOT:
            if (c == '\r') {
                s->ds = DS_DOT_CR;
                i++;
            } else {
                s->ds = DS_MID; /* a stuffed dot: dropped, the rest of the line is data */
            }
            continue;
        case DS_DOT_CR:
            if (c == '\n') {
                i++;
                data_complete(s);
                return i;
            }
            data_put(s, "\r", 1);
            s->ds = c == '\r' ? DS_CR : DS_MID;
            if (c == '\r')
                i++;
            continue;
        }
    }
    return i;
}

/* ---- commands ------------------------------------------------------------------------------ */

static bool verb_is(const char *line, const char *verb)
{
    size_t n = strlen(verb);
    return strncasecmp(line, verb, n) == 0 && (line[n] == '\0' || line[n] == ' ');
}

/* Parse "<path>" at *p (spaces before allowed); on success *p points after '>' and the
 * address (without <>) is returned (malloc'd). Quoted local parts may contain '>'. */
static char *parse_path(const char **p)
{
    const char *q = *p;
    while (*q == ' ')
        q++;
    if (*q != '<')
        return NULL;
    q++;
    const char *start = q;
    bool quoted = false;
    while (*q && (quoted || *q != '>')) {
        if (*q == '"')
            quoted = !quoted;
        else if (*q == '\\' && quoted && q[1])
            q++;
        q++;
    }
    if (*q != '>' || (size_t)(q - start) > MAX_ADDRESS)
        return NULL;
    /* drop an obsolete source route "@a,@b:" */
    const char *addr = start;
    if (*addr == '@') {
        const char *colon = memchr(addr, ':', (size_t)(q - addr));
        if (colon)
            addr = colon + 1;
    }
    for (const char *c = addr; c < q; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            return NULL;
    char *out = strndup(addr, (size_t)(q - addr));
    *p = q + 1;
    return out;
}

static void cmd_lhlo(struct voc_lmtp_session *s, const char *arg)
{
    while (*arg == ' ')
        arg++;
    if (!*arg) {
        bad_command(s, "501 5.5.4 LHLO needs a host name");
        return;
    }
    free(s->helo);
    s->helo = strdup(arg);
    reset_transaction(s);
    s->phase = PH_READY;
    say(s, "250-%s", s->hostname);
    say(s, "250-PIPELINING");
    say(s, "250-ENHANCEDSTATUSCODES");
    say(s, "250-8BITMIME");
    say(s, "250-SMTPUTF8");
    if (s->cfg.max_size)
        say(s, "250 SIZE %llu", (unsigned long long)s->cfg.max_size);
    else
        say(s, "250 SIZE");
}

static void cmd_mail(struct voc_lmtp_session *s, const char *arg)
{
    if (s->phase == PH_GREETED) {
        bad_command(s, "503 5.5.1 send LHLO first");
        return;
    }
    if (s->phase != PH_READY) {
        bad_command(s, "503 5.5.1 nested MAIL command");
        return;
    }
    if (strncasecmp(arg, "FROM:", 5) != 0) {
        bad_command(s, "501 5.5.4 syntax: MAIL FROM:<address>");
        return;
    }
    const char *p = arg + 5;
    char *sender = parse_path(&p);
    if (!sender) {
        bad_command(s, "501 5.1.7 bad sender address syntax");
        return;
    }
    /* ESMTP parameters */
    while (*p) {
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        const char *end = strchr(p, ' ');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > 5 && strncasecmp(p, "SIZE=", 5) == 0) {
            char num[32];
            size_t nl = len - 5 < sizeof num - 1 ? len - 5 : sizeof num - 1;
            memcpy(num, p + 5, nl);
            num[nl] = '\0';
            char *e;
            unsigned long long size = strtoull(num, &e, 10);
            if (*e || !isdigit((unsigned char)num[0])) {
                free(sender);
                bad_command(s, "501 5.5.4 bad SIZE parameter");
                return;
            }
            if (s->cfg.max_size && size > s->cfg.max_size) {
                free(sender);
                say(s, "552 5.3.4 message size %llu exceeds the limit of %llu bytes", size,
                    (unsigned long long)s->cfg.max_size);
                return;
            }
        } else if ((len == 13 && strncasecmp(p, "BODY=8BITMIME", 13) == 0) ||
                   (len == 9 && strncasecmp(p, "BODY=7BIT", 9) == 0) ||
                   (len == 8 && strncasecmp(p, "SMTPUTF8", 8) == 0)) {
            /* accepted: the message is stored as the bytes it is */
        } else {
            free(sender);
            bad_command(s, "555 5.5.4 unsupported MAIL parameter");
            return;
        }
        p += len;
    }
    reset_transaction(s);
    s->sender = sender;
    s->phase = PH_MAIL;
    say(s, "250 2.1.0 sender OK");
}

static void cmd_rcpt(struct voc_lmtp_session *s, const char *arg)
{
    if (s->phase != PH_MAIL) {
        bad_command(s, s->phase == PH_GREETED ? "503 5.5.1 send LHLO first"
                                              : "503 5.5.1 need MAIL before RCPT");
        return;
    }
    if (strncasecmp(arg, "TO:", 3) != 0) {
        bad_command(s, "501 5.5.4 syntax: RCPT TO:<address>");
        return;
    }
    const char *p = arg + 3;
    char *rcpt = parse_path(&p);
    if (!rcpt || !rcpt[0]) {
        free(rcpt);
        bad_command(s, "501 5.1.3 bad recipient address syntax");
        return;
    }
    while (*p == ' ')
        p++;
    if (*p) {
        free(rcpt);
        bad_command(s, "555 5.5.4 unsupported RCPT parameter");
        return;
    }
    if (s->rcpt_count >= s->cfg.max_recipients) {
        free(rcpt);
        say(s, "452 4.5.3 too many recipients");
        return;
    }
    char **n = realloc(s->rcpts, (s->rcpt_count + 1) * sizeof *n);
    if (!n) {
        free(rcpt);
        say(s, "452 4.3.0 out of memory");
        return;
    }
    s->rcpts = n;
    s->rcpts[s->rcpt_count++] = rcpt;
    say(s, "250 2.1.5 recipient OK");
}

static void cmd_data(struct voc_lmtp_session *s, const char *arg)
{
    if (*arg) {
        bad_command(s, "501 5.5.4 DATA takes no argument");
        return;
    }
    if (s->phase == PH_GREETED) {
        bad_command(s, "503 5.5.1 send LHLO first");
        return;
    }
    if (s->phase != PH_MAIL || s->rcpt_count == 0) {
        bad_command(s, "503 5.5.1 no valid recipients");
        return;
    }
    s->phase = PH_DATA;
    s->ds = DS_LINE_START;
    s->data_len = 0;
    s->too_big = false;
    say(s, "354 end data with <CR><LF>.<CR><LF>");
}

static void command(struct voc_lmtp_session *s, char *line)
{
    if (verb_is(line, "LHLO")) {
        cmd_lhlo(s, line + 4);
    } else if (verb_is(line, "MAIL")) {
        cmd_mail(s, line[4] ? line + 5 : "");
    } else if (verb_is(line, "RCPT")) {
        cmd_rcpt(s, line[4] ? line + 5 : "");
    } else if (verb_is(line, "DATA")) {
        const char *a = line + 4;
        while (*a == ' ')
            a++;
        cmd_data(s, a);
    } else if (verb_is(line, "RSET")) {
        reset_transaction(s);
        if (s->phase != PH_GREETED)
            s->phase = PH_READY;
        say(s, "250 2.0.0 OK");
    } else if (verb_is(line, "NOOP")) {
        say(s, "250 2.0.0 OK");
    } else if (verb_is(line, "QUIT")) {
        say(s, "221 2.0.0 %s closing", s->hostname);
        finish(s);
    } else if (verb_is(line, "VRFY")) {
        say(s, "252 2.5.2 cannot verify, send a message and see");
    } else if (verb_is(line, "HELP")) {
        say(s, "214 2.0.0 LMTP (RFC 2033): LHLO MAIL RCPT DATA RSET NOOP QUIT");
    } else if (verb_is(line, "HELO") || verb_is(line, "EHLO")) {
        bad_command(s, "500 5.5.1 this is an LMTP server: use LHLO");
    } else if (verb_is(line, "BDAT") || verb_is(line, "STARTTLS") || verb_is(line, "AUTH")) {
        bad_command(s, "502 5.5.1 command not implemented");
    } else {
        bad_command(s, "500 5.5.2 command not recognised");
    }
}

size_t voc_lmtp_feed(struct voc_lmtp_session *s, const char *data, size_t len)
{
    size_t i = 0;
    while (i < len) {
        if (s->phase == PH_WAITING || s->phase == PH_DONE)
            return i;
        if (s->phase == PH_DATA) {
            i += feed_data(s, data + i, len - i);
            continue;
        }
        const char *nl = memchr(data + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - data) : len;
        size_t chunk = end - i;
        if (!s->line_overflow) {
            if (s->line_len + chunk > MAX_COMMAND_LINE)
                s->line_overflow = true;
            else {
                memcpy(s->line + s->line_len, data + i, chunk);
                s->line_len += chunk;
            }
        }
        i = end;
        if (!nl)
            break;
        i++; /* the LF */
        size_t n = s->line_len;
        if (n > 0 && s->line[n - 1] == '\r')
            n--;
        s->line[n] = '\0';
        bool overflow = s->line_overflow;
        s->line_len = 0;
        s->line_overflow = false;
        if (overflow) {
            bad_command(s, "500 5.5.2 line too long");
            continue;
        }
        if (memchr(s->line, '\0', n)) {
            bad_command(s, "500 5.5.2 NUL in command");
            continue;
        }
        command(s, s->line);
    }
    return i;
}
