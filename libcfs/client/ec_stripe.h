// Stripe-level building blocks of the erasure-coded data path
// (docs/erasure-coding.md): where a stripe's k+m units live, what versions
// they hold, which version is consistent, and reading any byte range of any
// unit at that version — straight, or decoded from k others.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <tuple>
#include <set>
#include <vector>

#include "client/ec_calls.h"
#include "common/layout.h"
#include "ec/codec.h"

namespace cfs::client {

struct UnitState {
  bool known = false;    // EC_VERSIONS answered
  bool damaged = false;  // its version record is unreadable
  pb::UnitVersion cur, prev;
  bool CanServe(const pb::UnitVersion& v) const {
    return known && !damaged && (VersionEq(cur, v) || (prev.seq() != 0 && VersionEq(prev, v)));
  }
};

struct StripeView {
  uint64_t stripe = 0;
  std::vector<uint32_t> target_id;    // per unit j (0..k+m-1)
  std::vector<uint64_t> local_index;  // per unit j
  std::vector<UnitState> state;       // per unit j, after FetchStates
};

StripeView DescribeStripe(const Layout& l, uint64_t stripe);

// Fills state of every unit of every view (one EC_VERSIONS call per unit, all
// in parallel). Units that do not answer stay unknown.
void FetchStates(EcCalls& calls, uint64_t ino, const Layout& l, const std::vector<StripeView*>& views);

// How many units of the view can serve version v (as cur or prev).
uint32_t Holders(const StripeView& view, const pb::UnitVersion& v);

// The consistent version: the highest version at least k units can serve.
// False when no version has k holders. A stripe nobody wrote is {0,0}.
bool ConsistentVersion(const StripeView& v, uint32_t k, pb::UnitVersion* out);

// How long a unit may show a version other than the stripe's consistent one
// before it is taken for the leftover of a dead writer (rolled back), and how
// long a unit one version behind may be another client's write still landing
// (before writers go around it). docs/erasure-coding.md, "Not stepping on a
// write in flight".
constexpr std::chrono::milliseconds kLeftoverGrace{1000};
constexpr std::chrono::milliseconds kBehindGrace{100};
// The Repairer is never in a hurry: it gives a newer unit longer, so a slow
// client write (a loaded machine) is not undone under it.
constexpr std::chrono::milliseconds kRepairLeftoverGrace{5000};
// How long a writer or repairer waits in all for others' writes to settle.
constexpr std::chrono::seconds kSettleLimit{30};

// When each (stripe, unit, version) was first seen out of step. Grace periods
// count per sighting: a live client's stream of writes shows ever new
// versions, each of which lands within moments, and must never add up to one
// "dead writer" timeout.
class SightingClock {
 public:
  // Time since (stripe, j, v) was first seen; zero the first time.
  std::chrono::steady_clock::duration Age(uint64_t stripe, uint32_t j, const pb::UnitVersion& v);

 private:
  std::map<std::tuple<uint64_t, uint32_t, uint64_t, uint64_t>, std::chrono::steady_clock::time_point> first_;
};

// What a read at a version found out about units, for repair and reporting.
struct ReadReport {
  std::set<uint32_t> corrupt;  // units that answered EBADMSG
  std::set<uint32_t> failed;   // units that did not answer or refused
};

// Reads in-unit bytes [lo, hi) of the units `wanted` of stripe view at
// version ver into out[i] (hi - lo bytes each): reads the wanted units that
// can serve ver directly, decodes the others from k units that can. Units in
// `avoid` are not used as sources. `known` may hold units' [lo, hi) at ver
// already read by the caller: they are used as sources without a call.
// EIO when fewer than k units can serve.
Status ReadUnitsAt(EcCalls& calls, const ec::ErasureCodec& codec, uint64_t ino, const Layout& l,
                   const StripeView& view, const pb::UnitVersion& ver, uint32_t lo, uint32_t hi,
                   const std::vector<uint32_t>& wanted, const std::vector<char*>& out,
                   std::set<uint32_t> avoid, ReadReport* report, uint32_t rotate = 0,
                   const std::map<uint32_t, const char*>* known = nullptr);

}  // namespace cfs::client
