// cfs: the admin and user command line of CFS. Exit codes: 0 success,
// 1 the operation failed, 2 bad command line.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>

#include "cli_common.h"
#include "common/cli_parse.h"
#include "common/logging.h"

namespace cfs::tools {
void AddCkptCommand(CLI::App& app, Action* action);  // cmd_ckpt.cc
}

int main(int argc, char** argv) {
  using namespace cfs::tools;
  signal(SIGPIPE, SIG_IGN);
  // Library logs go to stderr so that stdout (tables, --json) stays clean.
  const char* level = std::getenv("CFS_LOG_LEVEL");
  cfs::InitLogging("cfs", "", level && *level ? level : "warn");
  CLI::App app{"cfs: status and administration of a CFS cluster, and a local cluster launcher.\n"
               "The cluster is found from --cluster HOST:PORT, else $CFS_CLUSTER, else the cfs mount\n"
               "holding a PATH argument or --mount DIR."};
  app.name("cfs");
  app.require_subcommand(1);
  app.set_version_flag("--version", "cfs 0.2.0");
  Action action;
  AddStatusCommand(app, &action);
  AddDfCommand(app, &action);
  AddWorkersCommand(app, &action);
  AddGetstripeCommand(app, &action);
  AddSetstripeCommand(app, &action);
  AddRebuildCommand(app, &action);
  AddScrubCommand(app, &action);
  AddLocalCommand(app, &action);
  AddCkptCommand(app, &action);
  // CLI11 would only say "a subcommand is required" for a misspelt command.
  for (int i = 1, depth = 0; i < argc && depth < 2; i++, depth++) {
    std::string a = argv[i];
    if (a.empty() || a[0] == '-') break;
    CLI::App* level = depth == 0 ? &app : app.get_subcommand(argv[1]);
    bool known = false;
    std::string names;
    for (CLI::App* sub : level->get_subcommands({})) {
      known |= sub->get_name() == a;
      names += (names.empty() ? "" : ", ") + sub->get_name();
    }
    if (level->get_subcommands({}).empty()) break;
    if (!known) return UsageError("unknown command '" + a + "' (commands: " + names + ")");
  }
  if (int rc = cfs::ParseCommandLine(&app, argc, argv, "cfs"); rc != cfs::kParsedOk) return rc;
  if (!action) return UsageError("no command given");
  return action();
}
