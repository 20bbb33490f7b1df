#include "cluster_json.h"

#include "common/layout.h"

namespace cfs::tools {

nlohmann::json LayoutJson(const pb::Layout& l) {
  nlohmann::json j{{"unit", l.unit()}, {"k", l.k()}, {"m", l.m()}};
  j["targets"] = nlohmann::json::array();
  for (uint32_t t : l.targets()) j["targets"].push_back(t);
  return j;
}

nlohmann::json WorkerJson(const pb::WorkerInfo& w) {
  nlohmann::json j{{"id", w.id()},
                   {"uuid", w.uuid()},
                   {"address", w.host() + ":" + std::to_string(w.port())},
                   {"up", w.up()},
                   {"last_heartbeat_ms_ago", w.last_heartbeat_ms_ago()},
                   {"transport", w.transport().empty() ? "tcp" : w.transport()}};
  j["targets"] = nlohmann::json::array();
  for (uint32_t t : w.target_ids()) j["targets"].push_back(t);
  return j;
}

nlohmann::json TargetJson(const pb::TargetInfo& t) {
  uint64_t used = t.capacity() > t.free() ? t.capacity() - t.free() : 0;
  return nlohmann::json{{"id", t.id()},         {"worker", t.worker_id()}, {"path", t.path()},
                        {"uuid", t.uuid()},     {"up", t.up()},            {"capacity", t.capacity()},
                        {"used", used},         {"free", t.free()},        {"retired", t.retired()}};
}

std::string LayoutShape(const pb::Layout& l) {
  return std::to_string(l.k()) + "+" + std::to_string(l.m()) + " unit=" + FormatSize(l.unit());
}

}  // namespace cfs::tools
