// The asynchronous C API: registered buffers and I/O queues (cfs.h).
#include <sys/mman.h>

#include "capi/buffer_table.h"
#include "capi/capi_internal.h"

