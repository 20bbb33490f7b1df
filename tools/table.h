// Table: aligned text tables for people (the default output of every command;
// --json is for scripts).
#pragma once

#include <string>
#include <vector>

namespace cfs::tools {

class Table {
 public:
  explicit Table(std::vector<std::string> header) : header_(std::move(header)) {}
  // Columns listed here are right-aligned (numbers and sizes).
  void AlignRight(size_t col);
  void AddRow(std::vector<std::string> row);
  // A horizontal rule before the next row (e.g. before a total).
  void AddRule();
  std::string ToString() const;

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;  // an empty row is a rule
  std::vector<bool> right_;
};

// Two columns, "key   value", for one-object reports such as `cfs status`.
class KeyValueList {
 public:
  void Add(std::string key, std::string value);
  std::string ToString() const;

 private:
  std::vector<std::pair<std::string, std::string>> items_;
};

// "1h 2m 3s", "45s".
std::string FormatDuration(int64_t seconds);
// "12%" of used over total; "-" when total is 0.
std::string FormatPercent(uint64_t part, uint64_t total);

}  // namespace cfs::tools
