// Pieces every cfs subcommand shares: exit codes, the cluster flags, connecting,
// printing errors and JSON, and the registration of subcommands with CLI11.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "client/client.h"
#include "common/status.h"

namespace cfs::tools {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;  // the operation failed
constexpr int kExitUsage = 2;    // bad command line

// Flags of every command that talks to a cluster.
struct ClusterFlags {
  std::string cluster;  // --cluster HOST:PORT[,HOST:PORT]
  std::string mount;    // --mount DIR
  bool json = false;    // --json
  int timeout_s = 10;   // --timeout
  // --transport: the data path to the S-workers (tcp|rdma|auto); default
  // $CFS_TRANSPORT, else auto. The M-worker is always reached over TCP.
  std::string transport;
  std::string rdma_device;  // --rdma-device
};
void AddClusterFlags(CLI::App* cmd, ClusterFlags* f);

// Resolves the cluster (see cluster_locator.h) and connects. On failure prints
// the reason and sets *exit_code.
std::unique_ptr<client::Client> ConnectOrReport(const ClusterFlags& f, const std::string& path,
                                                std::string* cfs_path, int* exit_code);

// The data transport a command uses: --transport, else $CFS_TRANSPORT, else auto.
std::string DataTransport(const ClusterFlags& f);

// "cfs: <what>: <status>" on stderr; returns kExitFailure.
int Fail(const std::string& what, const Status& st);
// "cfs: error: <msg>" plus a hint on stderr; returns kExitUsage.
int UsageError(const std::string& msg);
void PrintJson(const nlohmann::json& j);

// What a parsed subcommand runs; set by the subcommand's CLI11 callback.
using Action = std::function<int()>;
void AddStatusCommand(CLI::App& app, Action* action);
void AddDfCommand(CLI::App& app, Action* action);
void AddWorkersCommand(CLI::App& app, Action* action);
void AddGetstripeCommand(CLI::App& app, Action* action);
void AddSetstripeCommand(CLI::App& app, Action* action);
void AddLocalCommand(CLI::App& app, Action* action);
void AddRebuildCommand(CLI::App& app, Action* action);
void AddScrubCommand(CLI::App& app, Action* action);

}  // namespace cfs::tools
