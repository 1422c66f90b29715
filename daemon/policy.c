#include "policy.h"

#include <stdlib.h>
#include <string.h>

#include <vocd/plugin.h>

#include "calendar.h"
#include "rules.h"

static int compile_calendar(const struct voc_config *cfg, const struct voc_calendar_config *c,
                            struct voc_calendar **out, struct voc_diag *diag)
{
    struct voc_calendar_spec spec = {
        .name = c->name,
        .time_zone = c->time_zone,
        .extra_workday_hours = c->extra_workday_hours,
        .holidays = (const char *const *)c->holidays,
        .holiday_count = c->holiday_count,
        .extra_workdays = (const char *const *)c->extra_workdays,
        .extra_workday_count = c->extra_workday_count,
    };
    for (size_t h = 0; h < c->hour_count; h++) {
        int day = voc_calendar_weekday_parse(c->hours[h].key);
        if (day >= 0)
            spec.hours[day] = c->hours[h].value;
    }
    char err[512];
    if (voc_calendar_new(&spec, out, err, sizeof err) != 0) {
        voc_diag_error(diag, cfg->path, c->line, "%s", err);
        return -1;
    }
    return 0;
}

int voc_policy_new(const struct voc_config *cfg, struct voc_rules *rules, struct voc_policy **out,
                   struct voc_diag *diag)
{
    struct voc_policy *p = calloc(1, sizeof *p);
    if (!p) {
        voc_rules_free(rules);
        return -1;
    }
    p->rules = rules;
    size_t n = cfg->calendar_count;
    p->calendars = calloc(n ? n : 1, sizeof *p->calendars);
    p->calendar_names = calloc(n ? n : 1, sizeof *p->calendar_names);
    if (!p->calendars || !p->calendar_names)
        goto fail;
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        if (compile_calendar(cfg, &cfg->calendars[i], &p->calendars[i], diag) != 0) {
            rc = -1;
            continue;
        }
        p->calendar_names[i] = strdup(cfg->calendars[i].name);
    }
    p->calendar_count = n;
    if (rc != 0)
        goto fail;
    p->notifier_names =
        calloc(cfg->notifier_count ? cfg->notifier_count : 1, sizeof *p->notifier_names);
    if (!p->notifier_names)
        goto fail;
    for (size_t i = 0; i < cfg->notifier_count; i++) {
        if (!(p->notifier_names[i] = strdup(cfg->notifiers[i].name ? cfg->notifiers[i].name : "")))
            goto fail;
        p->notifier_count = i + 1;
    }
    *out = p;
    return 0;
fail:
    voc_policy_free(p);
    return -1;
}

void voc_policy_free(struct voc_policy *p)
{
    if (!p)
        return;
    voc_rules_free(p->rules);
    for (size_t i = 0; i < p->calendar_count; i++) {
        voc_calendar_free(p->calendars ? p->calendars[i] : NULL);
        free(p->calendar_names ? p->calendar_names[i] : NULL);
    }
    free(p->calendars);
    free(p->calendar_names);
    for (size_t i = 0; i < p->notifier_count; i++)
        free(p->notifier_names[i]);
    free(p->notifier_names);
    free(p);
}

bool voc_policy_has_notifier(const struct voc_policy *p, const char *name)
{
    for (size_t i = 0; p && name && i < p->notifier_count; i++)
        if (strcmp(p->notifier_names[i], name) == 0)
            return true;
    return false;
}

const struct voc_calendar *voc_policy_calendar(const struct voc_policy *p, const char *name)
{
    if (!name || strcmp(name, "24x7") == 0)
        return voc_calendar_24x7();
    for (size_t i = 0; p && i < p->calendar_count; i++)
        if (p->calendar_names[i] && strcmp(p->calendar_names[i], name) == 0)
            return p->calendars[i];
    return NULL;
}
