/* The daemon's configuration (etc/vocd.yaml): loaded, fully validated, then immutable.
 * Reload builds a new voc_config and swaps it in only when it is valid. */
#ifndef VOC_CONFIG_H
#define VOC_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "diag.h"
#include "yaml_doc.h"

struct voc_option;

enum voc_role { VOC_ROLE_ADMIN, VOC_ROLE_AGENT, VOC_ROLE_VIEWER, VOC_ROLE_INGEST };

struct voc_token_config {
    char *name;
    int role; /* enum voc_role */
    char **departments;
    size_t department_count;
    char *sha256;           /* as written: 64 hex digits */
    unsigned char hash[32]; /* decoded */
    int line;
};

struct voc_calendar_config {
    char *name; /* the mapping key */
    char *time_zone;
    struct voc_kv *hours; /* mon..sun -> "09:00-18:00[,13:00-17:00]" */
    size_t hour_count;
    char *extra_workday_hours;
    char **holidays;
    size_t holiday_count;
    char **extra_workdays;
    size_t extra_workday_count;
    int line;
};

struct voc_notifier_config {
    char *name;
    int type; /* enum voc_notifier_type */
    char *url;
    char *secret;
    char *smtp;
    char *from;
    char **to;
    size_t to_count;
    double timeout_s;
    double expire_s;
    int line;
};

enum voc_notifier_type { VOC_NOTIFIER_WEBHOOK, VOC_NOTIFIER_EMAIL, VOC_NOTIFIER_LOG };

/* A plugin section: its YAML mapping stays in the config document; the plugin loader
 * applies the plugin's own option table to it. */
struct voc_plugin_config {
    char *name;
    bool optional;
    struct voc_yaml_node *node;
    int line;
};

struct voc_config {
    char *path;     /* the config file */
    char *base_dir; /* its folder: relative paths are relative to it */
    struct voc_yaml_doc doc;

    char *data_dir;
    struct {
        char *http; /* host:port */
    } listen;
    int log_level; /* enum voc_log_level */
    char *profile;
    char *plugin_dir;
    struct {
        uint64_t max_body_size;
        double request_timeout_s;
    } http;
    struct {
        uint64_t map_size;
        uint64_t max_map_size;
        long long max_readers;
    } store;
    struct {
        long long queue_limit;
        long long batch_max;
    } writer;
    struct {
        char *lib_dir;
        long long max_instructions;
        uint64_t max_memory;
    } rules;
    struct {
        struct voc_token_config *tokens;
        size_t token_count;
    } auth;
    struct voc_calendar_config *calendars;
    size_t calendar_count;
    struct voc_notifier_config *notifiers;
    size_t notifier_count;
    struct voc_plugin_config *plugins;
    size_t plugin_count;
};

/* Load and validate `path`. All problems go to diag ("file:line: message").
 * Returns a config, or NULL when there was any error. */
struct voc_config *voc_config_load(const char *path, struct voc_diag *diag);
void voc_config_free(struct voc_config *cfg);

/* Split "host:port" / "[v6]:port". Returns 0 or -1. host is malloc'd. */
int voc_parse_listen(const char *text, char **host, uint16_t *port);

const char *voc_role_name(int role);
/* The core's option table (for `vocd --options`). */
const struct voc_option *voc_config_options(void);
const struct voc_calendar_config *voc_config_calendar(const struct voc_config *cfg,
                                                      const char *name);

#endif
