/* What the writer needs to apply a company's rules: the compiled Lua profile and the
 * business calendars its clocks count on. Built and validated as one on start-up and on
 * reload, handed to the writer, swapped between two batches, freed as one. */
#ifndef VOC_POLICY_H
#define VOC_POLICY_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "diag.h"

struct voc_calendar;
struct voc_rules;

struct voc_policy {
    struct voc_rules *rules; /* NULL: no profile, default classification, no clocks */
    struct voc_calendar **calendars;
    char **calendar_names;
    size_t calendar_count;
    char **notifier_names; /* the config's notifiers: what a notify action may name */
    size_t notifier_count;
};

/* Compile every calendar of cfg (errors with file:line in diag) and take `rules`
 * (ownership passes to the policy, also on failure). Returns 0 or -1. */
int voc_policy_new(const struct voc_config *cfg, struct voc_rules *rules, struct voc_policy **out,
                   struct voc_diag *diag);
void voc_policy_free(struct voc_policy *policy);
/* Is there a notifier called `name`? */
bool voc_policy_has_notifier(const struct voc_policy *policy, const char *name);
/* The calendar called `name`; "24x7" is built in. NULL when unknown. */
const struct voc_calendar *voc_policy_calendar(const struct voc_policy *policy, const char *name);

#endif
