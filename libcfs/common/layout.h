// Stripe layout arithmetic (DESIGN §3). A file is cut into stripes of k data
// units plus m parity units; stripe s covers file bytes [s*k*unit, (s+1)*k*unit).
// Unit j of stripe s lives on target index (s + j) % n of the layout's ordered
// target list, so parity rotates stripe by stripe; with n > k+m the window slides.
// Each target keeps one object per file holding its units densely, in stripe order.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace cfs {

constexpr uint32_t kMinStripeUnit = 64 * 1024;
constexpr uint32_t kMaxStripeUnit = 64 * 1024 * 1024;
constexpr uint32_t kDefaultStripeUnit = 1024 * 1024;
constexpr uint32_t kMaxDataUnits = 16;
constexpr uint32_t kMaxParityUnits = 4;
constexpr uint32_t kChecksumBlock = 64 * 1024;  // bytes covered by one checksum

struct Layout {
  uint32_t unit = kDefaultStripeUnit;  // bytes per stripe unit, power of two
  uint32_t k = 1;                      // data units per stripe
  uint32_t m = 0;                      // parity units per stripe
  std::vector<uint32_t> targets;       // ordered target ids, size n >= k+m

  uint32_t width() const { return k + m; }
  uint32_t n() const { return static_cast<uint32_t>(targets.size()); }
  uint64_t stripe_bytes() const { return uint64_t(k) * unit; }

  // Checks the invariants; a layout from the wire or a user is validated first.
  Status Validate() const;
  // Validates unit/k/m only (a layout hint before targets are chosen).
  Status ValidateShape() const;
  std::string ToString() const;
};

// One contiguous piece of a file range that lives in one unit on one target.
struct UnitExtent {
  uint64_t file_offset;   // where the piece starts in the file
  uint32_t length;        // bytes, never crosses a unit boundary
  uint64_t stripe;        // stripe index s
  uint32_t unit_index;    // j in [0, k): data unit within the stripe
  uint32_t target_index;  // index into Layout::targets
  uint64_t local_offset;  // byte offset inside the target's object
};

// Index into layout.targets of unit j of stripe s.
uint32_t TargetIndexOf(const Layout& l, uint64_t stripe, uint32_t j);
// Which stripe-local slot of target t holds stripe s (dense packing).
// Precondition: target t participates in stripe s.
uint64_t LocalUnitIndex(const Layout& l, uint64_t stripe, uint32_t target_index);
// Byte offset inside target t's object of the start of its unit of stripe s.
inline uint64_t LocalOffset(const Layout& l, uint64_t stripe, uint32_t target_index) {
  return LocalUnitIndex(l, stripe, target_index) * l.unit;
}
// Number of bytes target t's object holds for a file of size `file_size`
// (data units only; what a truncate leaves on that target).
uint64_t LocalObjectSize(const Layout& l, uint32_t target_index, uint64_t file_size);

// Cuts [offset, offset+length) into per-unit extents in file order.
std::vector<UnitExtent> MapRange(const Layout& l, uint64_t offset, uint64_t length);

// Parses "1M", "64K", "4MiB", "1048576" into bytes.
Result<uint64_t> ParseSize(const std::string& s);
// 1048576 -> "1 MiB", for people.
std::string FormatSize(uint64_t bytes);
// Parses "4+2" into k and m.
Status ParseStripe(const std::string& s, uint32_t* k, uint32_t* m);

}  // namespace cfs
