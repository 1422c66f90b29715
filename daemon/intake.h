/* The intake record: what every channel captures about one piece of feedback
 * (CONTRACT.md, "Cases and events"; docs/api.md). */
#ifndef VOC_INTAKE_H
#define VOC_INTAKE_H

#include <jansson.h>
#include <stdint.h>

#include "apierror.h"

/* Validate a record from any channel and return its normalised form (new reference):
 * every top-level field present, defaults applied (channel "api" unless default_channel is
 * given, source "customer", received_at = now), received_at canonical UTC. Unknown fields,
 * wrong types, missing text, invalid UTF-8 fill err and return -1. */
int voc_intake_validate(const json_t *record, const char *default_channel, int64_t now_us,
                        json_t **out, struct voc_err *err);

struct voc_textnorm;
/* Store `normalized` = voc_normalize(subject + "\n" + text) in the validated record: done
 * once when the case is created (on the writer thread), it serves every rule call and every
 * search after.
 * Returns 0, or -1 when normalisation failed (the record is then stored without it and
 * rules normalise on demand). */
int voc_intake_add_normalized(json_t *intake, struct voc_textnorm *tn);

/* Is `s` a valid channel name ([a-z0-9_-], 1..32 bytes)? */
int voc_channel_name_valid(const char *s);

#endif
