// Direct M-worker calls for the commands that have no client::Client method
// (rebuild, scrub): the cluster is found as for every command (--cluster,
// $CFS_CLUSTER, --mount).
#pragma once

#include <memory>
#include <string>

#include "cli_common.h"
#include "client/meta_client.h"

namespace cfs::tools {

// On failure prints the reason and sets *exit_code.
std::unique_ptr<client::MetaClient> MetaClientOrReport(const ClusterFlags& f, int* exit_code);

// "[#######.....] 58%" with `width` cells; "[????]" when total is 0.
std::string ProgressBar(uint64_t done, uint64_t total, int width = 30);
// "0:11", "1:02:03"; "?" for a negative (unknown) number of seconds.
std::string FormatEta(int64_t seconds);

}  // namespace cfs::tools
