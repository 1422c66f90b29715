#include "lifecycle.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "intake.h"
#include "jsonutil.h"
#include "timeutil.h"

static const char *const state_names[VOC_STATE_COUNT] = {
    "new",      "classified", "assigned", "planned",  "resolved",  "verified", "replied",
    "revisited", "closed",    "reopened", "rejected", "duplicate", "waiting",
};

static const char *const core_types[] = {
    "received", "classified", "assigned",  "acknowledged", "planned", "resolved",
    "verified", "replied",    "revisited", "closed",       "reopened", "rejected",
    "duplicate", "waiting",   "resumed",   "note",         "message", "clock_warning",
    "clock_breached", NULL,
};

#define S(x) (1u << VOC_STATE_##x)
#define OPEN_STATES                                                                           \
    (S(NEW) | S(CLASSIFIED) | S(ASSIGNED) | S(PLANNED) | S(RESOLVED) | S(VERIFIED) |          \
     S(REPLIED) | S(REVISITED) | S(REOPENED) | S(WAITING))
#define ALL_STATES ((1u << VOC_STATE_COUNT) - 1)

/* For each event: the states it may follow, and the state it leads to (-1 = unchanged). */
struct transition {
    const char *type;
    unsigned allowed;
    int next;
};

static const struct transition transitions[] = {
    {"classified", OPEN_STATES, -1}, /* NEW -> CLASSIFIED handled below */
    {"assigned", S(NEW) | S(CLASSIFIED) | S(ASSIGNED) | S(PLANNED) | S(REOPENED),
     VOC_STATE_ASSIGNED},
    {"acknowledged", OPEN_STATES, -1},
    {"planned", S(ASSIGNED) | S(PLANNED) | S(REOPENED), VOC_STATE_PLANNED},
    {"resolved", S(ASSIGNED) | S(PLANNED) | S(REOPENED), VOC_STATE_RESOLVED},
    {"verified", S(RESOLVED), VOC_STATE_VERIFIED},
    {"replied", S(RESOLVED) | S(VERIFIED) | S(REPLIED), VOC_STATE_REPLIED},
    {"revisited", S(REPLIED) | S(REVISITED), VOC_STATE_REVISITED},
    {"closed", S(RESOLVED) | S(VERIFIED) | S(REPLIED) | S(REVISITED), VOC_STATE_CLOSED},
    {"reopened", S(RESOLVED) | S(VERIFIED) | S(REPLIED) | S(REVISITED) | S(CLOSED) | S(REJECTED),
     VOC_STATE_REOPENED},
    {"rejected", S(NEW) | S(CLASSIFIED) | S(ASSIGNED) | S(PLANNED) | S(REOPENED) | S(WAITING),
     VOC_STATE_REJECTED},
    {"duplicate", OPEN_STATES, VOC_STATE_DUPLICATE},
    {"waiting", OPEN_STATES & ~(S(NEW) | S(WAITING)), VOC_STATE_WAITING},
    {"resumed", S(WAITING), -1}, /* back to the state before waiting, handled below */
    {"note", ALL_STATES, -1},
    {"message", ALL_STATES, -1},
    {"clock_warning", ALL_STATES, -1},
    {"clock_breached", ALL_STATES, -1},
    {NULL, 0, 0},
};

/* While waiting for the customer only these may happen (plus profile events). */
static const char *const allowed_while_waiting[] = {
    "resumed", "note", "message", "acknowledged", "classified", "rejected", "duplicate",
    "clock_warning", "clock_breached", NULL,
};

const char *voc_state_name(enum voc_state s)
{
    return s < VOC_STATE_COUNT ? state_names[s] : "?";
}

int voc_state_parse(const char *name, enum voc_state *out)
{
    for (int i = 0; i < VOC_STATE_COUNT; i++) {
        if (strcmp(state_names[i], name) == 0) {
            *out = (enum voc_state)i;
            return 0;
        }
    }
    return -1;
}

bool voc_state_is_open(enum voc_state s)
{
    return (OPEN_STATES & (1u << s)) != 0;
}

static bool in_list(const char *const *list, const char *s)
{
    for (int i = 0; list[i]; i++)
        if (strcmp(list[i], s) == 0)
            return true;
    return false;
}

bool voc_event_type_is_core(const char *type)
{
    return in_list(core_types, type);
}

bool voc_event_type_is_system(const char *type)
{
    return strcmp(type, "received") == 0 || strcmp(type, "clock_warning") == 0 ||
           strcmp(type, "clock_breached") == 0;
}

bool voc_event_type_name_valid(const char *type)
{
    size_t n = strlen(type);
    /* A digit may lead: CONTRACT.md names `8d_submitted` as a profile event. */
    if (n == 0 || n > 32 || !(islower((unsigned char)type[0]) || isdigit((unsigned char)type[0])))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!(islower((unsigned char)type[i]) || isdigit((unsigned char)type[i]) || type[i] == '_'))
            return false;
    return true;
}

static void describe_allowed(unsigned allowed, char *buf, size_t len)
{
    buf[0] = '\0';
    for (int i = 0; i < VOC_STATE_COUNT; i++) {
        if (!(allowed & (1u << i)))
            continue;
        if (buf[0])
            strncat(buf, ", ", len - strlen(buf) - 1);
        strncat(buf, state_names[i], len - strlen(buf) - 1);
    }
}

int voc_lifecycle_apply(const struct voc_case_state *now, const char *type, bool profile_type,
                        struct voc_case_state *next, char *reason, size_t reason_len)
{
    *next = *now;
    if (strcmp(type, "received") == 0) {
        snprintf(reason, reason_len, "'received' is recorded when the case is created");
        return -1;
    }
    if (!voc_event_type_is_core(type)) {
        if (!profile_type) {
            snprintf(reason, reason_len, "unknown event type '%s'", type);
            return -1;
        }
        if (!voc_state_is_open(now->state)) {
            snprintf(reason, reason_len, "'%s' is not allowed on a %s case", type,
                     state_names[now->state]);
            return -1;
        }
        return 0;
    }
    const struct transition *t = transitions;
    while (t->type && strcmp(t->type, type) != 0)
        t++;
    if (now->state == VOC_STATE_WAITING && !in_list(allowed_while_waiting, type)) {
        snprintf(reason, reason_len,
                 "the case is waiting for the customer: post 'resumed' before '%s'", type);
        return -1;
    }
    if (!(t->allowed & (1u << now->state))) {
        char states[256];
        describe_allowed(t->allowed, states, sizeof states);
        snprintf(reason, reason_len, "'%s' is not allowed in state '%s' (allowed in: %s)", type,
                 state_names[now->state], states);
        return -1;
    }
    if (strcmp(type, "classified") == 0) {
        if (now->state == VOC_STATE_NEW)
            next->state = VOC_STATE_CLASSIFIED;
    } else if (strcmp(type, "resumed") == 0) {
        next->state = now->before_wait;
    } else if (strcmp(type, "waiting") == 0) {
        next->state = VOC_STATE_WAITING;
        next->before_wait = now->state;
    } else if (t->next >= 0) {
        next->state = (enum voc_state)t->next;
    }
    return 0;
}

static int check_string_array(const json_t *v, const char *name, struct voc_err *err)
{
    if (!json_is_array(v)) {
        voc_err_set(err, 400, "wrong_type", "'%s' must be an array of strings", name);
        return -1;
    }
    size_t i;
    json_t *item;
    json_array_foreach(v, i, item)
    {
        if (!json_is_string(item) || json_string_length(item) == 0 ||
            json_string_length(item) > 256) {
            voc_err_set(err, 400, "wrong_type", "'%s[%zu]' must be a non-empty string", name, i);
            return -1;
        }
    }
    return 0;
}

int voc_classification_validate(const json_t *c, struct voc_err *err)
{
    static const char *const kinds[] = {"complaint", "suggestion", "praise", "inquiry", "opinion",
                                        NULL};
    static const char *const strings[] = {"category", "severity", "department", NULL};
    if (!json_is_object(c)) {
        voc_err_set(err, 400, "wrong_type", "classification must be an object");
        return -1;
    }
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)c, key, v)
    {
        if (strcmp(key, "kind") == 0) {
            if (!json_is_string(v) || !in_list(kinds, json_string_value(v))) {
                voc_err_set(err, 400, "wrong_type",
                            "'kind' must be one of complaint, suggestion, praise, inquiry, "
                            "opinion");
                return -1;
            }
        } else if (in_list(strings, key)) {
            if (!json_is_string(v) || json_string_length(v) > 256) {
                voc_err_set(err, 400, "wrong_type", "'%s' must be a string", key);
                return -1;
            }
        } else if (strcmp(key, "priority") == 0) {
            if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 4) {
                voc_err_set(err, 400, "wrong_type", "'priority' must be an integer 1..4");
                return -1;
            }
        } else if (strcmp(key, "collaborators") == 0 || strcmp(key, "tags") == 0) {
            if (check_string_array(v, key, err) != 0)
                return -1;
        } else {
            voc_err_set(err, 400, "unknown_field", "unknown classification field '%s'", key);
            return -1;
        }
    }
    return 0;
}

static int validate_data(const char *type, const json_t *data, const json_t *note,
                         struct voc_err *err)
{
    if (strcmp(type, "classified") == 0) {
        if (json_object_size(data) == 0) {
            voc_err_set(err, 400, "missing_field",
                        "'classified' needs data with the classification fields to change");
            return -1;
        }
        return voc_classification_validate(data, err);
    }
    if (strcmp(type, "assigned") == 0) {
        json_t *d = json_object_get(data, "department");
        if (!json_is_string(d) || json_string_length(d) == 0 || json_string_length(d) > 256) {
            voc_err_set(err, 400, d ? "wrong_type" : "missing_field",
                        "'assigned' needs data.department (a non-empty string)");
            return -1;
        }
        json_t *c = json_object_get(data, "collaborators");
        if (c && check_string_array(c, "data.collaborators", err) != 0)
            return -1;
    }
    if (strcmp(type, "revisited") == 0) {
        json_t *s = json_object_get(data, "satisfaction");
        if (!json_is_integer(s) || json_integer_value(s) < 1 || json_integer_value(s) > 5) {
            voc_err_set(err, 400, s ? "wrong_type" : "missing_field",
                        "'revisited' needs data.satisfaction, an integer 1..5");
            return -1;
        }
    }
    if (strcmp(type, "duplicate") == 0) {
        json_t *of = json_object_get(data, "of");
        if (!json_is_integer(of) || json_integer_value(of) <= 0) {
            voc_err_set(err, 400, of ? "wrong_type" : "missing_field",
                        "'duplicate' needs data.of, a case id (integer)");
            return -1;
        }
    }
    if (strcmp(type, "rejected") == 0 && (!note || json_string_length(note) == 0)) {
        voc_err_set(err, 400, "missing_field",
                    "'rejected' needs a note: the reason the customer will be told");
        return -1;
    }
    if (strcmp(type, "planned") == 0) {
        json_t *due = json_object_get(data, "due");
        int64_t due_us;
        if (due &&
            (!json_is_string(due) || voc_parse_time(json_string_value(due), &due_us) != 0)) {
            voc_err_set(err, 400, "wrong_type", "data.due must be an RFC 3339 time");
            return -1;
        }
    }
    return 0;
}

int voc_event_validate(const json_t *body, bool (*is_profile_type)(const char *type, void *arg),
                       void *arg, json_t **out, struct voc_err *err)
{
    static const char *const known[] = {"type", "actor", "note", "data", NULL};
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)body, key, v)
    {
        if (!in_list(known, key)) {
            voc_err_set(err, 400, "unknown_field", "unknown field '%s'", key);
            return -1;
        }
    }
    json_t *type = json_object_get(body, "type");
    if (!type) {
        voc_err_set(err, 400, "missing_field", "field 'type' is required");
        return -1;
    }
    if (!json_is_string(type) || !voc_event_type_name_valid(json_string_value(type))) {
        voc_err_set(err, 400, "wrong_type",
                    "field 'type' must be an event type such as 'assigned' or 'note'");
        return -1;
    }
    const char *t = json_string_value(type);
    if (voc_event_type_is_system(t)) {
        voc_err_set(err, 400, "wrong_type", "'%s' events are recorded by vocd itself", t);
        return -1;
    }
    if (!voc_event_type_is_core(t) && !(is_profile_type && is_profile_type(t, arg))) {
        voc_err_set(err, 400, "wrong_type",
                    "unknown event type '%s' (neither a core type nor declared by the profile)",
                    t);
        return -1;
    }
    json_t *actor = json_object_get(body, "actor");
    if (actor && !json_is_null(actor) &&
        (!json_is_string(actor) || json_string_length(actor) > 256)) {
        voc_err_set(err, 400, "wrong_type", "field 'actor' must be a string");
        return -1;
    }
    json_t *note = json_object_get(body, "note");
    if (note && json_is_null(note))
        note = NULL;
    if (note && (!json_is_string(note) || json_string_length(note) > 64 * 1024)) {
        voc_err_set(err, 400, "wrong_type", "field 'note' must be a string (up to 64 KiB)");
        return -1;
    }
    json_t *data = json_object_get(body, "data");
    if (data && json_is_null(data))
        data = NULL;
    if (data && !json_is_object(data)) {
        voc_err_set(err, 400, "wrong_type", "field 'data' must be an object");
        return -1;
    }
    json_t *empty = json_object();
    int rc = validate_data(t, data ? data : empty, note, err);
    json_decref(empty);
    if (rc != 0)
        return -1;
    json_t *o = json_object();
    json_object_set(o, "type", type);
    json_object_set_new(o, "actor", actor && !json_is_null(actor) ? json_copy(actor) : json_null());
    json_object_set_new(o, "note", note ? json_copy(note) : json_null());
    json_object_set_new(o, "data", data ? json_deep_copy(data) : json_object());
    *out = o;
    return 0;
}
