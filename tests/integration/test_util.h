// Small helpers shared by the integration tests (beside cluster_fixture.h).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace cfs::test {

class LocalCluster;

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

// --- Erasure-coded clusters (ec_*_test.cc) ---

// A file's layout as `cfs getstripe --json` prints it.
struct FileLayout {
  uint64_t ino = 0;
  uint32_t unit = 0, k = 0, m = 0;
  std::vector<uint32_t> targets;  // layout order: unit j of stripe s is on targets[(s + j) % n]
};
// `cfs getstripe --json PATH` (PATH on the mount); "" or why it failed.
std::string GetFileLayout(const LocalCluster& c, const std::string& path, FileLayout* out);
// Target id -> S-worker index I (its directory is DIR/storage-I/...), from `cfs df --json`.
std::map<uint32_t, int> TargetWorkers(const LocalCluster& c);
// Target id -> its directory on disk, from `cfs df --json`.
std::map<uint32_t, std::string> TargetPaths(const LocalCluster& c);
// "state" of `cfs rebuild status --json` ("" if the command failed; *json gets the whole output).
std::string RebuildState(const LocalCluster& c, std::string* json = nullptr);
// Polls `cfs rebuild status --json` until "idle"; gives up after max_s seconds (a hang bound,
// not a performance check). "" or the last status seen.
std::string WaitRebuildIdle(const LocalCluster& c, int max_s = 240);
// kill -9 of S-worker I (pid from DIR/run/storage-I.pid) and waits until it is gone;
// false if no such process ran.
bool KillWorker(const LocalCluster& c, int i);
// WritePatternFile, then fsync before close; true on success.
bool WritePatternFileSynced(const std::string& path, uint64_t size, uint64_t seed, size_t chunk = 1 << 20);
// Path of an object's slot-0 file on a target: TARGET/objects/<hh>/<ino 16 hex> (docs/on-disk-storage.md).
std::string ObjectPath(const std::string& target_dir, uint64_t ino);

}  // namespace cfs::test
