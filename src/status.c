/* status.c — error-message formatting shared by every core file. */
#include <stdarg.h>
#include <stdio.h>
#include "sm.h"

sm_status sm_fail(sm_err *err, sm_status st, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return st;
}
