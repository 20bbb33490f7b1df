// Small helpers the rebuild and scrub managers share.
#pragma once

#include <cstdint>

#include "cfs.pb.h"
#include "client/client.h"
#include "common/layout.h"

namespace cfs::meta {

// pb::Layout -> Layout is client::FromProto (libcfs/client/client.h).
using client::FromProto;

// Bytes a resync of target index t rebuilds for a file of file_size bytes, as
// the Repairer paces them: one unit per stripe the target takes part in (the
// k units read for it are not counted: --rebuild-rate is reconstructed bytes).
inline uint64_t EstimateTargetBytes(const Layout& l, uint32_t t, uint64_t file_size) {
  (void)t;
  if (l.k == 0 || l.unit == 0 || l.targets.empty()) return 0;
  uint64_t stripes = (file_size + l.stripe_bytes() - 1) / l.stripe_bytes();
  // Target t takes part in width() of every n stripes.
  return stripes * l.width() / l.n() * l.unit;
}

}  // namespace cfs::meta
