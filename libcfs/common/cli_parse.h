// ParseCommandLine: CLI11 parsing as the CFS programs (the daemons and the cfs
// tool) want it. CLI11 checks required options and subcommands before it looks
// for arguments it does not know, so a misspelt option used to be reported as
// "--db is required" or "A subcommand is required"; here the unknown argument
// is named first.
#pragma once

#include <string>

namespace CLI {
class App;
}

namespace cfs {

// Returned by ParseCommandLine when the program should go on.
constexpr int kParsedOk = -1;
// The exit code of every CFS program for a bad command line.
constexpr int kExitBadCommandLine = 2;

// Parses argv into app. Returns kParsedOk, or the exit code once the outcome
// is printed: 0 after --help or --version, kExitBadCommandLine after
// "<prog>: error: <what>" on stderr.
int ParseCommandLine(CLI::App* app, int argc, char** argv, const std::string& prog);

}  // namespace cfs
