/* An error as the API reports it: HTTP status, a stable code, a message for people.
 * Validation code fills one; the HTTP layer turns it into {"error":{code,message}}. */
#ifndef VOC_APIERROR_H
#define VOC_APIERROR_H

struct voc_err {
    int status;       /* HTTP status */
    const char *code; /* docs/api.md, "Errors" */
    char message[512];
};

void voc_err_set(struct voc_err *e, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
