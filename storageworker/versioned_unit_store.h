// VersionedUnitStore: where one target keeps the units of erasure-coded files
// (layouts with m > 0), each unit with a current and a previous version kept
// copy-on-write (docs/erasure-coding.md; on disk: docs/on-disk-storage.md,
// "Versioned units"). Units are addressed by (ino, local unit index); every
// call names the layout's unit size. Reads never return wrong bytes: a block
// that fails its checksum, or a version record that fails its own, is EBADMSG.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace cfs::storage {

// Ordered by (seq, tag); seq 0 = never written (reads as zeros).
struct UnitVer {
  uint64_t seq = 0;
  uint64_t tag = 0;
  bool operator==(const UnitVer&) const = default;
};

struct UnitState {
  UnitVer cur;
  UnitVer prev;          // {0,0}: none kept (or the zero content)
  bool damaged = false;  // the version record failed its checksum; cur/prev are {0,0}
};

enum class EcMode { kFull, kRange, kXor, kBump };

struct EcWrite {
  uint64_t ino = 0;
  uint64_t index = 0;  // local unit index
  uint32_t unit = 0;   // unit size in bytes
  UnitVer base, version;
  EcMode mode = EcMode::kFull;
  uint32_t offset = 0;    // inside the unit
  std::string_view data;  // FULL: the unit; RANGE/XOR: the bytes at offset; BUMP: empty
};

struct EcWriteResult {
  bool accepted = false;
  UnitVer cur;  // the unit's current version after the call
};

// Limits shared by the store and the service.
constexpr uint32_t kMinEcUnit = 64u << 10;
constexpr uint32_t kMaxEcUnit = 64u << 20;
constexpr uint32_t kMaxEcVersionsCount = 4096;

class VersionedUnitStore {
 public:
  virtual ~VersionedUnitStore() = default;

  // Accepted only if the unit's cur == base: then the new content goes to the
  // slot not holding cur, and afterwards the record says {cur = version,
  // prev = base}. version == base is a repair (FULL/RANGE): cur's slot is
  // rewritten in place. Not accepted: OK with accepted=false and the cur.
  // EINVAL for malformed requests, EBADMSG when the base content (RANGE/XOR)
  // fails its checksum or the record is damaged (only FULL from {0,0} heals it).
  virtual Result<EcWriteResult> Write(const EcWrite& w) = 0;
  // Fills out[0, len) with [offset, offset+len) of the unit at version want
  // (want.seq == 0: the current one) and returns that version. ESTALE if the
  // unit holds neither as cur nor prev; EBADMSG on a checksum failure.
  virtual Result<UnitVer> Read(uint64_t ino, uint64_t index, uint32_t unit, UnitVer want,
                               uint32_t offset, uint32_t len, char* out) = 0;
  // States of units [first, first+count); a missing object is all {0,0}.
  virtual Status Versions(uint64_t ino, uint64_t first, uint32_t count,
                          std::vector<UnitState>* out) = 0;
  // Units [0, n) of ino have version records (0 for a missing object).
  virtual Result<uint64_t> RecordedUnits(uint64_t ino) = 0;
  // If cur == version and a prev is kept: cur = prev, prev dropped. Else no-op.
  virtual Status Rollback(uint64_t ino, uint64_t index, uint32_t unit, UnitVer version) = 0;
  // If cur == version or the record is damaged: the unit becomes never written.
  virtual Status ResetToEmpty(uint64_t ino, uint64_t index, uint32_t unit, UnitVer version) = 0;
  // Makes both slots and the version records durable. A missing object is OK.
  virtual Status Fsync(uint64_t ino) = 0;
  // Keeps units [0, size/unit); size must be a multiple of unit.
  virtual Status Truncate(uint64_t ino, uint32_t unit, uint64_t size) = 0;
  // Removes both slots and the records (the slot 0 object too). Missing is OK.
  virtual Status Delete(uint64_t ino) = 0;
};

// EINVAL unless unit is a power of two in [kMinEcUnit, kMaxEcUnit].
Status CheckEcUnit(uint32_t unit);

}  // namespace cfs::storage
