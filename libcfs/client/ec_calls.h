// EcCalls: the S-worker calls of the erasure-coded data path (EC_READ,
// EC_WRITE, EC_VERSIONS, EC_ROLLBACK), started in parallel and waited for as a
// batch. A target the cluster map says is down is not called: its call fails
// at once with EHOSTDOWN. A transport failure refreshes the map and drops the
// channels to that S-worker, so the next batch sees the new state.
#pragma once

#include <chrono>
#include <memory>
#include <vector>

#include "cfs.pb.h"
#include "client/cluster_map.h"
#include "rpc/channel_pool.h"

namespace cfs::client {

// Ordering of stripe versions: by seq, then tag.
bool VersionLess(const pb::UnitVersion& a, const pb::UnitVersion& b);
bool VersionEq(const pb::UnitVersion& a, const pb::UnitVersion& b);
std::string VersionString(const pb::UnitVersion& v);

struct EcCall {
  uint32_t target_id = 0;
  std::unique_ptr<google::protobuf::Message> req, resp;
  rpc::CallSpec spec;
  rpc::Endpoint ep;
  std::shared_ptr<rpc::PendingCall> pending;
  Status st;
  bool transport_failure = false;  // the S-worker did not answer (down, cut, timed out)

  template <class T> T& Req() { return *static_cast<T*>(req.get()); }
  template <class T> T& Resp() { return *static_cast<T*>(resp.get()); }
  uint64_t bulk_in_len() const { return pending ? pending->bulk_in_len() : 0; }
};

class EcCalls {
 public:
  EcCalls(rpc::ChannelPool* pool, ClusterMapCache* map, std::chrono::milliseconds failure_timeout)
      : pool_(pool), map_(map), failure_timeout_(failure_timeout) {}

  // Builders: the returned call is not started.
  std::unique_ptr<EcCall> Versions(uint64_t ino, uint32_t target_id, uint64_t first, uint32_t count,
                                   uint32_t unit);
  std::unique_ptr<EcCall> Read(uint64_t ino, uint32_t target_id, uint64_t local_index, uint32_t unit,
                               uint32_t offset, uint32_t length, const pb::UnitVersion& want,
                               char* out);
  std::unique_ptr<EcCall> Write(uint64_t ino, uint32_t target_id, uint64_t local_index, uint32_t unit,
                                const pb::UnitVersion& base, const pb::UnitVersion& version,
                                pb::EcWriteMode mode, uint32_t offset, uint32_t length,
                                const char* data);
  // to_empty: the unit becomes never written (see EcRollbackRequest).
  std::unique_ptr<EcCall> Rollback(uint64_t ino, uint32_t target_id, uint64_t local_index,
                                   uint32_t unit, const pb::UnitVersion& version, bool to_empty = false);
  std::unique_ptr<EcCall> Object(pb::Method method, uint64_t ino, uint32_t target_id, uint64_t size,
                                 uint32_t unit);
  // The same request again (same body, bulk and timeout), not started.
  std::unique_ptr<EcCall> Again(const EcCall& c);

  void Start(EcCall& c);
  void Wait(EcCall& c);
  // Starts all, then waits for all.
  void Run(const std::vector<EcCall*>& calls);

  ClusterMapCache* map() { return map_; }

 private:
  std::unique_ptr<EcCall> Make(pb::Method method, uint32_t target_id,
                               std::unique_ptr<google::protobuf::Message> req,
                               std::unique_ptr<google::protobuf::Message> resp, uint64_t bytes);
  rpc::ChannelPool* pool_;
  ClusterMapCache* map_;
  std::chrono::milliseconds failure_timeout_;
};

}  // namespace cfs::client
