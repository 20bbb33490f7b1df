// Status and Result: the error currency of CFS. Codes are POSIX errno values so
// that the FUSE layer and the C API can hand them through unchanged; the message
// says what went wrong for logs and CLI output. No exceptions cross modules.
#pragma once

#include <cerrno>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace cfs {

class Status {
 public:
  Status() = default;
  Status(int err, std::string msg) : err_(err), msg_(std::move(msg)) {}

  static Status OK() { return Status(); }
  static Status NotFound(std::string m) { return Status(ENOENT, std::move(m)); }
  static Status Exists(std::string m) { return Status(EEXIST, std::move(m)); }
  static Status Invalid(std::string m) { return Status(EINVAL, std::move(m)); }
  static Status IOError(std::string m) { return Status(EIO, std::move(m)); }
  static Status NoSpace(std::string m) { return Status(ENOSPC, std::move(m)); }
  static Status Corruption(std::string m) { return Status(EBADMSG, std::move(m)); }
  static Status Unavailable(std::string m) { return Status(EHOSTUNREACH, std::move(m)); }
  static Status TimedOut(std::string m) { return Status(ETIMEDOUT, std::move(m)); }
  static Status NotSupported(std::string m) { return Status(EOPNOTSUPP, std::move(m)); }
  static Status Permission(std::string m) { return Status(EACCES, std::move(m)); }
  static Status Stale(std::string m) { return Status(ESTALE, std::move(m)); }
  static Status Protocol(std::string m) { return Status(EPROTO, std::move(m)); }
  // errno value from a failed syscall, with context.
  static Status FromErrno(int e, const std::string& what);

  bool ok() const { return err_ == 0; }
  int err() const { return err_; }
  const std::string& message() const { return msg_; }
  // "ENOENT: no such file: /a/b" style text for logs and CLI.
  std::string ToString() const;

  // True for errors that a retry against a fresh connection or map may cure.
  bool IsRetryable() const {
    return err_ == EHOSTUNREACH || err_ == ECONNREFUSED || err_ == ECONNRESET ||
           err_ == EPIPE || err_ == ETIMEDOUT || err_ == ENOTCONN;
  }

 private:
  int err_ = 0;
  std::string msg_;
};

// Result<T>: a value or the Status saying why there is none.
template <class T>
class Result {
 public:
  Result(T v) : v_(std::move(v)) {}                 // NOLINT(implicit)
  Result(Status s) : v_(std::move(s)) {}            // NOLINT(implicit)
  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() { return value(); }
  const T& operator*() const { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace cfs

#define CFS_RETURN_IF_ERROR(expr)          \
  do {                                      \
    ::cfs::Status _st = (expr);             \
    if (!_st.ok()) return _st;              \
  } while (0)

#define CFS_CONCAT_INNER(a, b) a##b
#define CFS_CONCAT(a, b) CFS_CONCAT_INNER(a, b)
#define CFS_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                              \
  if (!tmp.ok()) return tmp.status();             \
  lhs = std::move(tmp).value()
#define CFS_ASSIGN_OR_RETURN(lhs, expr) \
  CFS_ASSIGN_OR_RETURN_IMPL(CFS_CONCAT(_res_, __LINE__), lhs, expr)
