#include "common/cli_parse.h"

#include <CLI/CLI.hpp>
#include <cstdio>

namespace cfs {
namespace {

// Drops every "must be given" rule of app and its subcommands (option groups
// included): options, positionals, subcommands.
void RelaxRequirements(CLI::App* app) {
  for (CLI::Option* o : app->get_options()) o->required(false);
  app->require_subcommand(0, app->get_require_subcommand_max());
  app->require_option(0, app->get_require_option_max());
  for (CLI::App* sub : app->get_subcommands([](CLI::App*) { return true; })) {
    sub->required(false);
    RelaxRequirements(sub);
  }
}

// After a failed parse: the message about an argument nobody knows, if the
// command line holds one ("" if not). Parses again without requirements, so
// app is of no further use except for printing.
std::string FindUnknownArgument(CLI::App* app, int argc, char** argv) {
  RelaxRequirements(app);
  try {
    app->parse(argc, argv);
  } catch (const CLI::ExtrasError& e) {
    return e.what();
  } catch (const CLI::Error&) {
  }
  return "";
}

}  // namespace

int ParseCommandLine(CLI::App* app, int argc, char** argv, const std::string& prog) {
  try {
    app->parse(argc, argv);
    return kParsedOk;
  } catch (const CLI::CallForHelp& e) {
    return app->exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app->exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app->exit(e);
  } catch (const CLI::ParseError& e) {
    std::string msg = e.what();
    if (dynamic_cast<const CLI::ExtrasError*>(&e) == nullptr) {
      std::string unknown = FindUnknownArgument(app, argc, argv);
      if (!unknown.empty()) msg = unknown;
    }
    std::fprintf(stderr, "%s: error: %s\nRun with --help for more information.\n", prog.c_str(), msg.c_str());
    return kExitBadCommandLine;
  }
}

}  // namespace cfs
