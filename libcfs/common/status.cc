#include "common/status.h"

#include <cstring>

namespace cfs {

Status Status::FromErrno(int e, const std::string& what) {
  return Status(e, what + ": " + std::strerror(e));
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  const char* name = strerrorname_np(err_);
  std::string s = name ? name : ("error " + std::to_string(err_));
  if (!msg_.empty()) s += ": " + msg_;
  return s;
}

}  // namespace cfs
