// Small helpers shared by the integration tests (beside cluster_fixture.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace cfs::test {

// sync + `echo 3 > /proc/sys/vm/drop_caches` so the next reads come from CFS,
// not the kernel page cache. "" on success, else why it failed.
std::string DropCaches();
// Whole file as a string; *ok (if given) says whether it could be read.
std::string ReadFileStr(const std::string& path, bool* ok = nullptr);
// Creates/truncates path with exactly `content`; true on success.
bool WriteFileStr(const std::string& path, const std::string& content);
// Names in a directory (without . and ..), via opendir/readdir; sets *err to errno on failure.
std::vector<std::string> ListDir(const std::string& path, int* err = nullptr);
// A TCP port on 127.0.0.1 that nothing listens on right now.
uint16_t UnusedPort();
// Regular files under dir (recursively), as absolute paths.
std::vector<std::string> FilesUnder(const std::string& dir);
// True if pid exists and is not a zombie (a daemon whose parent is an init
// that does not reap stays a zombie after it exited).
bool ProcessAlive(int pid);
// Runs cmd with `timeout SECS` in front; exit status 124 means it timed out.
int RunWithTimeout(int secs, const std::string& cmd, std::string* output = nullptr);

}  // namespace cfs::test
