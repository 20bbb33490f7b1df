// What the main() of every CFS daemon (cfs-meta, cfs-storage) does alike:
// stop signals taken synchronously by the main thread, and file limits.
#pragma once

#include <signal.h>

namespace cfs {

// Blocks SIGTERM and SIGINT in the calling thread, and so in every thread it
// starts later, and ignores SIGPIPE (a peer gone is an error, not our death).
// Call before any thread starts; returns the set for WaitForStopSignal.
sigset_t BlockStopSignals();

// Waits for one of the signals BlockStopSignals blocked; returns its number.
int WaitForStopSignal(const sigset_t& sigs);

// Raises the soft limit on open files to the hard limit.
void RaiseFdLimit();

}  // namespace cfs
