/* thaw-mini: exception reporting and deliberate faults (thaw.fault=). */
#ifndef THAW_MINI_EXCEPTIONS_H
#define THAW_MINI_EXCEPTIONS_H

#include "options.h"

/* Raises the chosen exception in ring 0; the handler then ends the VM. */
void raise_fault(enum fault_kind fault);

#endif
