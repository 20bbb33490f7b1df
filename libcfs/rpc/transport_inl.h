#pragma once
#include "rpc/frame.h"

namespace cfs::rpc {

template <class Req, class Resp>
Handler Typed(std::function<Status(const Req&, Resp*)> fn) {
  return [fn = std::move(fn)](ServerCall& call) {
    Req req;
    Status st = DecodeBody(call.body(), &req);
    Resp resp;
    if (st.ok()) st = fn(req, &resp);
    call.Reply(st, st.ok() ? &resp : nullptr);
  };
}

}  // namespace cfs::rpc
