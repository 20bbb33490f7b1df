// `cfs local up|down|start-worker|status`: the local cluster launcher's
// command line (the interface is fixed: tests and later issues rely on it).
#include "cli_common.h"
#include "local_cluster.h"

namespace cfs::tools {

void AddLocalCommand(CLI::App& app, Action* action) {
  auto* local = app.add_subcommand("local", "run a whole cluster on this machine (1 cfs-meta, N cfs-storage, a mount)");
  local->require_subcommand(1);

  struct Common {
    std::string dir;
    int timeout_s = 60;
    bool json = false;
  };
  auto add_common = [](CLI::App* cmd, Common* c) {
    cmd->add_option("--dir", c->dir, "directory holding all the cluster's state")->required()->type_name("DIR");
    cmd->add_option("--timeout", c->timeout_s, "seconds to wait for each step")
        ->check(CLI::Range(1, 3600))
        ->capture_default_str();
  };

  {
    auto c = std::make_shared<Common>();
    auto f = std::make_shared<UpFlags>();
    auto* up = local->add_subcommand(
        "up", "start cfs-meta, N cfs-storage and a cfs-fuse mount; exits once the mount serves requests");
    add_common(up, c.get());
    up->add_option("--mount", f->mount, "mountpoint (required the first time)")->type_name("MNT");
    auto* w = up->add_option("--workers", f->workers, "number of S-workers (default 6; may grow, never shrink)")
                  ->check(CLI::Range(1, 256))
                  ->type_name("N");
    up->add_option("--stripe", f->stripe, "default layout K+M (default: 4+2 with 6 or more S-workers, else N+0)")
        ->type_name("K+M");
    up->add_option("--heartbeat-timeout-ms", f->heartbeat_timeout_ms,
                   "cfs-meta: mark an S-worker down after this silence (default 5000)")
        ->check(CLI::PositiveNumber)
        ->type_name("MS");
    up->add_option("--rebuild-after-s", f->rebuild_after_s,
                   "cfs-meta: rebuild a target's units elsewhere after its S-worker is down this long "
                   "(default 600; 0: only on `cfs rebuild`)")
        ->check(CLI::NonNegativeNumber)
        ->type_name("S");
    up->add_option("--rebuild-rate", f->rebuild_rate, "cfs-meta: rebuild throttle, bytes/s (default 200M; 0: unthrottled)")
        ->type_name("SIZE");
    up->add_option("--scrub-interval-s", f->scrub_interval_s,
                   "cfs-meta: background scrub every S seconds (default 0: off)")
        ->check(CLI::NonNegativeNumber)
        ->type_name("S");
    up->add_option("--unit", f->unit, "default stripe unit (default 1M)")->type_name("SIZE");
    up->add_option("--transport", f->transport,
                   "data path between the mount (and clients) and the S-workers (default tcp): rdma "
                   "needs a usable RDMA device and a --bind address on it, and fails before starting "
                   "anything otherwise; auto uses RDMA where it reaches an S-worker, else TCP. The "
                   "M-worker is always reached over TCP. Kept in DIR/cluster.json")
        ->check(CLI::IsMember({"tcp", "rdma", "auto"}))
        ->type_name("tcp|rdma|auto");
    up->add_option("--bind", f->bind,
                   "IPv4 address all daemons listen on (M-worker, S-workers, metrics; default "
                   "127.0.0.1). rdma_cm cannot use 127.x on Soft-RoCE: with --transport rdma give the "
                   "RDMA interface's address (e.g. 10.77.0.1). Kept in DIR/cluster.json")
        ->type_name("ADDR");
    up->add_option("--rdma-device", f->rdma_device,
                   "RDMA device for --transport rdma|auto (e.g. rxe0; default: the device that holds "
                   "--bind)")
        ->type_name("NAME");
    up->add_option("--fuse-options", f->fuse_options, "extra -o options for cfs-fuse (e.g. allow_other)")
        ->type_name("OPTS");
    up->add_option("--log-level", f->log_level, "daemons' log level")
        ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
    up->callback([c, f, w, action] {
      f->dir = c->dir;
      f->workers_given = w->count() > 0;
      *action = [c, f] { return LocalLauncher(c->dir, std::chrono::seconds(c->timeout_s)).Up(*f); };
    });
  }
  {
    auto c = std::make_shared<Common>();
    auto* down = local->add_subcommand("down", "unmount and stop every daemon of the cluster (ok if already down)");
    add_common(down, c.get());
    down->callback([c, action] {
      *action = [c] { return LocalLauncher(c->dir, std::chrono::seconds(c->timeout_s)).Down(); };
    });
  }
  {
    auto c = std::make_shared<Common>();
    auto index = std::make_shared<int>(-1);
    auto* sw = local->add_subcommand("start-worker", "(re)start S-worker I on its existing data and wait until it is up");
    add_common(sw, c.get());
    sw->add_option("I", *index, "worker index, 0..N-1")->required()->check(CLI::NonNegativeNumber);
    sw->callback([c, index, action] {
      *action = [c, index] {
        return LocalLauncher(c->dir, std::chrono::seconds(c->timeout_s)).StartWorker(*index);
      };
    });
  }
  {
    auto c = std::make_shared<Common>();
    auto* st = local->add_subcommand("status", "show which of the cluster's processes run");
    add_common(st, c.get());
    st->add_flag("--json", c->json, "print JSON for scripts");
    st->callback([c, action] {
      *action = [c] { return LocalLauncher(c->dir, std::chrono::seconds(c->timeout_s)).ShowStatus(c->json); };
    });
  }
}

}  // namespace cfs::tools
