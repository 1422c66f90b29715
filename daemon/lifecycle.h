/* The case lifecycle: which event may follow which state, and the state it leads to
 * (docs/api.md, "Lifecycle"). A case's state is a fold of this function over its events,
 * so it is never stored independently of them. Pure functions, no I/O. */
#ifndef VOC_LIFECYCLE_H
#define VOC_LIFECYCLE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "apierror.h"

enum voc_state {
    VOC_STATE_NEW,
    VOC_STATE_CLASSIFIED,
    VOC_STATE_ASSIGNED,
    VOC_STATE_PLANNED,
    VOC_STATE_RESOLVED,
    VOC_STATE_VERIFIED,
    VOC_STATE_REPLIED,
    VOC_STATE_REVISITED,
    VOC_STATE_CLOSED,
    VOC_STATE_REOPENED,
    VOC_STATE_REJECTED,
    VOC_STATE_DUPLICATE,
    VOC_STATE_WAITING,
    VOC_STATE_COUNT
};

const char *voc_state_name(enum voc_state s);
/* Returns 0 and sets *out, or -1 for an unknown name. */
int voc_state_parse(const char *name, enum voc_state *out);
bool voc_state_is_open(enum voc_state s);

/* Core event types (CONTRACT.md). */
bool voc_event_type_is_core(const char *type);
/* received, clock_warning, clock_breached: recorded by vocd itself, never posted. */
bool voc_event_type_is_system(const char *type);
/* ^[a-z][a-z0-9_]{0,31}$ */
bool voc_event_type_name_valid(const char *type);

struct voc_case_state {
    enum voc_state state;
    enum voc_state before_wait; /* meaningful while state == WAITING */
};

/* May `type` happen now? `profile_type` is true for a type the profile declared.
 * Returns 0 and the next state, or -1 with the reason (a 409). */
int voc_lifecycle_apply(const struct voc_case_state *now, const char *type, bool profile_type,
                        struct voc_case_state *next, char *reason, size_t reason_len);

/* Validate a posted event body {type, actor, note, data}: shape, types, and the data each
 * core type needs (assigned: department; revisited: satisfaction 1..5; duplicate: of;
 * rejected: note; classified: classification fields). `is_profile_type` tells whether a
 * non-core type is declared by the profile. Returns 0 with a normalised copy in *out, or
 * -1 with err (400). */
int voc_event_validate(const json_t *body, bool (*is_profile_type)(const char *type, void *arg),
                       void *arg, json_t **out, struct voc_err *err);

/* Validate classification fields (all optional; `partial` = only the given ones).
 * kind in complaint|suggestion|praise|inquiry|opinion, priority 1..4, strings, arrays of
 * strings. Returns 0 or -1 with err. */
int voc_classification_validate(const json_t *c, struct voc_err *err);

#endif
