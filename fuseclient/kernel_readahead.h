// The kernel sizes buffered FUSE reads by the mount's readahead window, which
// starts at 128 KiB and which INIT can only shrink. To get 1 MiB READ requests
// (and a few of them in flight) we raise the window through sysfs once INIT is
// done: /sys/class/bdi/MAJOR:MINOR/read_ahead_kb of the mount's device.
#pragma once

#include <atomic>
#include <string>
#include <thread>

namespace cfs::fuse {

// "MAJOR:MINOR" of the file system mounted at mountpoint, from
// /proc/self/mountinfo (no stat: the mount is not served yet), or "".
std::string MountDevice(const std::string& mountpoint);

// Starts a thread that waits for *initialized, then writes kb to the mount's
// read_ahead_kb, unless *stopping was set first (the device number may then
// belong to another mount). Failures are logged, not fatal (reads stay small).
std::thread RaiseReadahead(std::string device, const std::atomic<bool>* initialized,
                           const std::atomic<bool>* stopping, int kb);

}  // namespace cfs::fuse
