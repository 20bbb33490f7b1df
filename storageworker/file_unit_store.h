// FileUnitStore: a VersionedUnitStore on a FileChunkStore's files. Per object:
// slot 0 = the object file itself (unit i at byte i*unit, as for m = 0),
// slot 1 = "<ino>.1" at the same offsets (both with their checksum sidecars),
// and "<ino>.ec", one 64-byte checksummed version record per local unit.
// Format and crash behaviour: docs/on-disk-storage.md, "Versioned units".
#pragma once

#include <array>
#include <atomic>
#include <functional>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <unordered_set>

#include "file_chunk_store.h"
#include "versioned_unit_store.h"

namespace cfs::storage {

constexpr size_t kUnitRecordSize = 64;

class FileUnitStore : public VersionedUnitStore {
 public:
  // chunks must outlive this store.
  explicit FileUnitStore(FileChunkStore* chunks);

  Result<EcWriteResult> Write(const EcWrite& w) override;
  Result<UnitVer> Read(uint64_t ino, uint64_t index, uint32_t unit, UnitVer want, uint32_t offset,
                       uint32_t len, char* out) override;
  Status Versions(uint64_t ino, uint64_t first, uint32_t count,
                  std::vector<UnitState>* out) override;
  Result<uint64_t> RecordedUnits(uint64_t ino) override;
  Status Rollback(uint64_t ino, uint64_t index, uint32_t unit, UnitVer version) override;
  Status ResetToEmpty(uint64_t ino, uint64_t index, uint32_t unit, UnitVer version) override;
  Status Fsync(uint64_t ino) override;
  Status Truncate(uint64_t ino, uint32_t unit, uint64_t size) override;
  Status Delete(uint64_t ino) override;

  std::string RecordPath(uint64_t ino) const;  // ObjectPath(ino) + ".ec"
  FileChunkStore& chunks() { return *chunks_; }
  // Version records found failing their checksum (for metrics).
  uint64_t damaged_records() const { return damaged_records_.load(); }

  // Slot value of a version whose content is all zeros (no slot holds it).
  static constexpr uint8_t kZeroSlot = 2;
  // One unit's record as stored (docs/on-disk-storage.md).
  struct Record {
    UnitVer cur;
    uint8_t cur_slot = kZeroSlot;
    UnitVer prev;
    uint8_t prev_slot = kZeroSlot;
    bool prev_present = false;
    uint8_t unit_log2 = 0;  // 0 = not recorded yet
  };

 private:
  static constexpr size_t kLockStripes = 256;
  std::shared_mutex& LockFor(uint64_t ino, uint64_t index);
  // The record of a unit; *damaged when it fails its checksum (record then {}).
  Result<Record> Load(uint64_t ino, uint64_t index, bool* damaged);
  Status Store(uint64_t ino, uint64_t index, const Record& r);
  // Writes the whole unit into slot `to`: the content of slot `from` (kZeroSlot:
  // zeros) with data written (or XORed) at offset. In bounded pieces;
  // before_write (if set) runs once, after the first piece was read and
  // verified and before anything is written.
  Status CopyPatch(uint64_t ino, uint64_t index, uint32_t unit, uint8_t from, uint8_t to,
                   bool xor_data, uint32_t offset, std::string_view data,
                   const std::function<Status()>& before_write);
  Status Damaged(uint64_t ino, uint64_t index);
  void LockAll();
  void UnlockAll();

  FileChunkStore* chunks_;
  std::array<std::shared_mutex, kLockStripes> locks_;
  std::atomic<uint64_t> damaged_records_{0};
  std::mutex created_mu_;
  std::unordered_set<uint64_t> created_;  // record files created since their dir was synced
};

// Record codec, exposed for tests. Decode: false when the bytes fail the
// checksum or the format (an all-zero record is a valid never-written unit).
void EncodeUnitRecord(const FileUnitStore::Record& r, char out[kUnitRecordSize]);
bool DecodeUnitRecord(const char in[kUnitRecordSize], FileUnitStore::Record* r);

}  // namespace cfs::storage
