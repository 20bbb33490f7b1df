#include "kernel_readahead.h"

#include <chrono>
#include <fstream>
#include <sstream>

#include "common/logging.h"

namespace cfs::fuse {

std::string MountDevice(const std::string& mountpoint) {
  std::ifstream f("/proc/self/mountinfo");
  std::string line, dev;
  // id parent MAJ:MIN root mountpoint ...; the last match is the top mount.
  while (std::getline(f, line)) {
    std::istringstream ss(line);
    std::string id, parent, majmin, root, mnt;
    ss >> id >> parent >> majmin >> root >> mnt;
    if (mnt == mountpoint) dev = majmin;
  }
  return dev;
}

std::thread RaiseReadahead(std::string device, const std::atomic<bool>* initialized,
                           const std::atomic<bool>* stopping, int kb) {
  return std::thread([device, initialized, stopping, kb] {
    for (int i = 0; i < 3000 && !initialized->load() && !stopping->load(); i++)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (!initialized->load() || device.empty()) return;
    // INIT's reply is applied by the kernel when libfuse writes it, just after
    // our init callback returned; give that write a moment.
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (stopping->load()) return;
    std::string path = "/sys/class/bdi/" + device + "/read_ahead_kb";
    std::ofstream out(path);
    out << kb << "\n";
    out.flush();
    if (!out)
      LOG_WARN("cannot set {} to {} (reads stay at the kernel default size)", path, kb);
    else
      LOG_INFO("kernel readahead {} KiB via {}", kb, path);
  });
}

}  // namespace cfs::fuse
