// The libfuse low-level operations of cfs-fuse: each one a thin translation of
// a kernel request into a cfs::client::Client call. FUSE inode numbers are CFS
// inode numbers (root 1), so there is no inode table to keep.
#pragma once

#define FUSE_USE_VERSION 35
#include <fuse_lowlevel.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <unordered_map>

#include "client/client.h"

namespace cfs::fuse {

// Per-mount state handed to libfuse as userdata.
struct FuseContext {
  client::Client* client = nullptr;
  fuse_session* se = nullptr;
  // Parent of directories we have seen, for the ".." entry of readdir.
  std::mutex mu;
  std::unordered_map<uint64_t, uint64_t> dir_parent;
  // Set once INIT has been answered (the kernel then has our limits).
  std::atomic<bool> initialized{false};
};

const fuse_lowlevel_ops* CfsFuseOps();

// errno to hand to the kernel for a Status: EBADMSG (checksum) becomes EIO,
// anything outside the errno range becomes EIO too.
int FuseErrno(const Status& s);

}  // namespace cfs::fuse
