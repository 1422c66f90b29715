/* What `vocctl rules test` (rules_cmd.c) and `vocctl rules replay` (rules_replay.c) share:
 * loading a profile the way vocd would, with the calendars and budgets of a config. */
#ifndef VOC_CTL_RULES_CMD_H
#define VOC_CTL_RULES_CMD_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "vocctl.h"

struct voc_config;
struct voc_policy;
struct voc_rules;

/* Where a config comes from: -c FILE, or etc/vocd.yaml when it exists. */
#define VOC_CTL_RULES_DEFAULT_CONFIG "etc/vocd.yaml"

struct voc_ctl_rules_env {
    struct voc_config *cfg;    /* NULL: no config, only the built-in 24x7 calendar */
    struct voc_policy *policy; /* the profile and the config's calendars */
    struct voc_rules *rules;   /* policy->rules (borrowed) */
};

/* Load the config (`config`, or the default when it exists and config is NULL) and
 * compile `profile` as vocd does: rules.lib_dir from the config when it sets one, else
 * <profile folder>/../lib; the config's budgets and calendar names (an unknown calendar is
 * a load error); the profile's own tests. Every problem goes to stderr as
 * "file:line: message"; a clock on a calendar no config defines gets a warning (it is
 * counted 24x7). Returns 0, or 1 (the exit code) after printing why. */
int voc_ctl_rules_load(const char *profile, const char *config, struct voc_ctl_rules_env *env);
void voc_ctl_rules_env_free(struct voc_ctl_rules_env *env);

/* Print a JSON document (--json output) with a final newline. Returns 0 or 1. */
int voc_ctl_rules_print_json(const json_t *doc);
/* An instant as local time "YYYY-MM-DD HH:MM" (INT64_MIN: "-"). */
void voc_ctl_rules_local(int64_t us, char *buf, size_t len);

/* `vocctl rules replay ...` (argv[0] = "rules replay"). */
int voc_ctl_rules_replay(struct voc_ctl *ctl, int argc, char **argv);

#endif
