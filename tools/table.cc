#include "table.h"

#include <algorithm>
#include <cstdio>

namespace cfs::tools {

void Table::AlignRight(size_t col) {
  if (right_.size() <= col) right_.resize(col + 1, false);
  right_[col] = true;
}

void Table::AddRow(std::vector<std::string> row) {
  row.resize(header_.size());
  rows_.push_back(std::move(row));
}

void Table::AddRule() { rows_.emplace_back(); }

std::string Table::ToString() const {
  std::vector<size_t> width(header_.size(), 0);
  for (size_t c = 0; c < header_.size(); c++) width[c] = header_[c].size();
  for (const auto& r : rows_)
    for (size_t c = 0; c < r.size(); c++) width[c] = std::max(width[c], r[c].size());
  auto line = [&](const std::vector<std::string>& r) {
    std::string out;
    for (size_t c = 0; c < r.size(); c++) {
      bool right = c < right_.size() && right_[c];
      size_t pad = width[c] - r[c].size();
      if (right) out.append(pad, ' ');
      out += r[c];
      if (c + 1 < r.size()) {
        if (!right) out.append(pad, ' ');
        out += "  ";
      }
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out + "\n";
  };
  size_t total = 0;
  for (size_t w : width) total += w + 2;
  std::string out = line(header_);
  for (const auto& r : rows_) out += r.empty() ? std::string(total > 2 ? total - 2 : 0, '-') + "\n" : line(r);
  return out;
}

void KeyValueList::Add(std::string key, std::string value) {
  items_.emplace_back(std::move(key), std::move(value));
}

std::string KeyValueList::ToString() const {
  size_t w = 0;
  for (const auto& [k, v] : items_) w = std::max(w, k.size());
  std::string out;
  for (const auto& [k, v] : items_) out += k + std::string(w - k.size() + 2, ' ') + v + "\n";
  return out;
}

std::string FormatDuration(int64_t s) {
  if (s < 0) return "-";
  int64_t d = s / 86400, h = s / 3600 % 24, m = s / 60 % 60, sec = s % 60;
  std::string out;
  if (d) out += std::to_string(d) + "d ";
  if (d || h) out += std::to_string(h) + "h ";
  if (d || h || m) out += std::to_string(m) + "m ";
  out += std::to_string(sec) + "s";
  return out;
}

std::string FormatPercent(uint64_t part, uint64_t total) {
  if (total == 0) return "-";
  char buf[16];
  std::snprintf(buf, sizeof buf, "%.0f%%", 100.0 * static_cast<double>(part) / static_cast<double>(total));
  return buf;
}

}  // namespace cfs::tools
