// Process plumbing for the local cluster launcher: finding sibling binaries,
// starting detached daemons, pid files, stopping, free ports, log tails.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace cfs::tools {

// NAME next to the running cfs executable (/proc/self/exe), else on $PATH.
Result<std::string> FindBinary(const std::string& name);

// Starts argv as a daemon that outlives us: own session, stdin from /dev/null,
// stdout and stderr appended to `log`, no other inherited descriptors.
// Fails (with the errno of execve) if the program cannot be started.
Result<pid_t> SpawnDaemon(const std::vector<std::string>& argv, const std::string& log);

// Alive and not a zombie (reaps it if it is our child).
bool ProcessAlive(pid_t pid);
// Alive and running the program `name` (guards against recycled pids).
bool ProcessRuns(pid_t pid, const std::string& name);

// 0 if the file is missing or malformed.
pid_t ReadPidFile(const std::string& path);
// Writes via a temporary file and rename, so readers never see half a file.
Status WriteFileAtomic(const std::string& path, const std::string& content);
Result<std::string> ReadWholeFile(const std::string& path);

// SIGTERM to all, wait up to `grace`, then SIGKILL the rest and wait for them.
// Returns the pids that needed SIGKILL.
std::vector<pid_t> StopProcesses(const std::vector<pid_t>& pids, std::chrono::milliseconds grace);

// Runs a program to completion (stdout/stderr appended to *output); exit status or -1.
int RunProgram(const std::vector<std::string>& argv, std::string* output);

// `n` distinct free TCP ports on host, an IPv4 address (bound to port 0 together, then released).
Result<std::vector<uint16_t>> FreePorts(size_t n, const std::string& host = "127.0.0.1");

// Last `lines` lines of a text file from byte `from` on ("" if unreadable).
std::string TailFile(const std::string& path, size_t lines, uint64_t from = 0);
// Size of a file, 0 if missing.
uint64_t FileSize(const std::string& path);

}  // namespace cfs::tools
