// Repairer: what cfs-meta's rebuild and scrub threads use to move data
// (docs/erasure-coding.md, "Redundancy management"). Works on files with
// m > 0; a file with m == 0 has nothing to repair (OK, nothing done).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>

#include "common/layout.h"
#include "common/status.h"

namespace cfs::client {

struct RepairStats {
  uint64_t stripes_checked = 0;
  uint64_t units_repaired = 0;     // units (re)written
  uint64_t bytes_read = 0;         // from S-workers
  uint64_t bytes_written = 0;      // to S-workers
  uint64_t checksum_errors = 0;    // EBADMSG answers seen
  uint64_t parity_mismatches = 0;  // stripes whose units disagree with the code
  uint64_t unrepairable = 0;       // stripes with fewer than k good units
  std::set<uint32_t> targets_repaired;  // targets that held a unit (re)written
};

// Called after each stripe with the bytes moved for it; may sleep (throttling)
// and may return false to stop early (the call then returns ECANCELED).
using RepairPace = std::function<bool(uint64_t bytes)>;

class Repairer {
 public:
  virtual ~Repairer() = default;
  // Brings the unit of target index t (into l.targets) of every stripe of a
  // file of `file_size` bytes to the stripe's consistent version: decodes it
  // from k others and writes it where it is stale, missing or damaged.
  // EIO if some stripe has fewer than k readable units (counted in stats).
  virtual Status ResyncTarget(uint64_t ino, const Layout& l, uint32_t t, uint64_t file_size,
                              RepairStats* stats, const RepairPace& pace) = 0;
  // Verifies every unit of every stripe (checksums and parity) and repairs
  // what is wrong from redundancy.
  virtual Status Scrub(uint64_t ino, const Layout& l, uint64_t file_size, RepairStats* stats,
                       const RepairPace& pace) = 0;
};

// A Repairer that talks to the cluster whose M-worker listens at meta_addr
// (HOST:PORT), over TCP; it moves units to and from the S-workers over
// `transport` (tcp, rdma or auto, see rpc::MakeTransport).
Result<std::unique_ptr<Repairer>> NewRepairer(const std::string& meta_addr,
                                              const std::string& transport = "tcp",
                                              const std::string& rdma_device = "");

}  // namespace cfs::client
