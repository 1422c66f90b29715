#include "apierror.h"

#include <stdarg.h>
#include <stdio.h>

void voc_err_set(struct voc_err *e, int status, const char *code, const char *fmt, ...)
{
    e->status = status;
    e->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
}
