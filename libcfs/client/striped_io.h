// StripedIo: the real DataPath. Cuts a file range into units (MapRange), sends
// every unit to its target's S-worker at once over pooled pipelined channels,
// and waits for all. Writes gather bulk from the caller's buffer and reads land
// straight in it: no copies here. A unit that fails on the connection is
// retried once after refreshing the cluster map; a checksum error (EBADMSG) on
// an S-worker becomes EIO for the caller, with a log line.
#pragma once

#include <chrono>
#include <memory>

#include "client/cluster_map.h"
#include "client/data_path.h"
#include "client/ec_io.h"
#include "client/task_pool.h"
#include "rpc/channel_pool.h"

namespace cfs::client {

class StripedIo : public DataPath {
 public:
  // Layouts with parity (m > 0) go through EcIo on a task pool; meta (may be
  // null) receives its degraded-write reports.
  StripedIo(rpc::ChannelPool* pool, ClusterMapCache* map, std::chrono::milliseconds timeout,
            MetaClient* meta = nullptr,
            std::chrono::milliseconds failure_timeout = std::chrono::milliseconds(5000));
  ~StripedIo() override;

  std::unique_ptr<IoOp> StartWrite(uint64_t ino, const Layout& l, const char* buf, uint64_t off,
                                   uint64_t len) override;
  std::unique_ptr<IoOp> StartWriteV(uint64_t ino, const Layout& l, const WriteSource& src,
                                    uint64_t off, uint64_t len) override;
  std::unique_ptr<IoOp> StartRead(uint64_t ino, const Layout& l, char* buf, uint64_t off,
                                  uint64_t len) override;
  Status AllTargets(pb::Method method, uint64_t ino, const Layout& l,
                    const std::function<uint64_t(uint32_t)>& size_of) override;
  Status TruncateObjects(uint64_t ino, const Layout& l, uint64_t size) override;
  EcIo& ec() { return *ec_; }

 private:
  rpc::ChannelPool* pool_;
  ClusterMapCache* map_;
  std::chrono::milliseconds timeout_;
  std::unique_ptr<EcIo> ec_;
  std::unique_ptr<TaskPool> tasks_;  // created on the first parity layout
  std::once_flag tasks_once_;
  TaskPool& Tasks();
};

}  // namespace cfs::client
