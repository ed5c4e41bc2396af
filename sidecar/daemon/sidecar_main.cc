// cluster-sidecar: the daemon. Glue only: parses the command line, checks
// everything an operator can get wrong before it starts (each problem is one line
// and a non-zero exit), then runs Sidecar on a single-threaded io_context until
// SIGTERM or SIGINT. Under systemd (Type=notify) it reports READY=1 once its ports
// are bound and sends WATCHDOG=1 at half the watchdog interval.
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <csignal>
#include <iostream>
#include <string>
#include <utility>  // before Asio: Boost 1.74 under g++ 12 needs it

#include "shared/cluster_config.h"
#include "sidecar/auth/cluster_key.h"
#include "sidecar/daemon/node_state.h"
#include "sidecar/daemon/sidecar.h"

namespace {

constexpr int kStartupError = 1;

int StartupError(const std::string& message) {
  std::cerr << "cluster-sidecar: " << message << "\n";
  return kStartupError;
}

int64_t NowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Where the view goes when the cluster file does not say: /run/cluster-balance/
// (systemd's RuntimeDirectory) when writable, else the data dir.
std::string DefaultViewPath(const std::string& data_dir) {
  const char* run_dir = "/run/cluster-balance";
  if (access(run_dir, W_OK) == 0) return std::string(run_dir) + "/view";
  return data_dir + "/view";
}

// Sends WATCHDOG=1 every `interval` for as long as the io_context runs.
void KeepWatchdogFed(boost::asio::steady_timer& timer, std::chrono::microseconds interval) {
  sd_notify(0, "WATCHDOG=1");
  timer.expires_after(interval);
  timer.async_wait([&timer, interval](const boost::system::error_code& error) {
    if (!error) KeepWatchdogFed(timer, interval);
  });
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"cluster-sidecar: the cluster-balance daemon of one server"};
  std::string config_path;
  std::string server_id;
  std::string view_path;
  bool verbose = false;
  app.add_option("--config", config_path, "the cluster file (TOML)")->required();
  app.add_option("--server", server_id, "this server's id in the cluster file")->required();
  app.add_option("--view-file", view_path, "where to publish the view (overrides the file)");
  app.add_flag("--verbose", verbose, "log connection attempts too");
  CLI11_PARSE(app, argc, argv);

  spdlog::set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");
  if (verbose) spdlog::set_level(spdlog::level::debug);

  cb::Result<cb::ClusterConfig> config = cb::LoadClusterConfig(config_path);
  if (!config.ok()) return StartupError(config.status().message());
  const cb::ServerConfig* self = config->FindServer(server_id);
  if (self == nullptr) {
    return StartupError("unknown server id \"" + server_id + "\": " + config_path +
                        " has no [[server]] with that id");
  }
  const std::string data_dir = config->ResolvePath(self->node.data_dir);
  if (cb::Status prepared = cb::daemon::PrepareDataDir(data_dir); !prepared.ok()) {
    return StartupError(prepared.message());
  }
  cb::Result<cb::auth::ClusterKey> key =
      cb::auth::LoadClusterKey(config->ResolvePath(config->key_file));
  if (!key.ok()) return StartupError(key.status().message());
  cb::Result<uint64_t> incarnation = cb::daemon::NextIncarnation(data_dir, NowUnixMs());
  if (!incarnation.ok()) return StartupError(incarnation.status().message());

  cb::daemon::SidecarOptions options{*config, self->index, std::move(key).value(), *incarnation,
                                     ""};
  if (!view_path.empty()) {
    options.view_path = view_path;
  } else if (!self->node.view_file.empty()) {
    options.view_path = config->ResolvePath(self->node.view_file);
  } else {
    options.view_path = DefaultViewPath(data_dir);
  }

  boost::asio::io_context io(1);
  cb::Result<std::unique_ptr<cb::daemon::Sidecar>> sidecar =
      cb::daemon::Sidecar::Start(io, std::move(options));
  if (!sidecar.ok()) return StartupError(sidecar.status().message());

  boost::asio::steady_timer watchdog(io);
  boost::asio::signal_set signals(io, SIGTERM, SIGINT, SIGHUP);
  std::function<void(const boost::system::error_code&, int)> on_signal =
      [&](const boost::system::error_code& error, int number) {
        if (error) return;
        if (number == SIGHUP) {
          spdlog::info("SIGHUP: nothing to reopen, the log goes to stderr");
          signals.async_wait(on_signal);
          return;
        }
        spdlog::info("{}: leaving the cluster", number == SIGTERM ? "SIGTERM" : "SIGINT");
        sd_notify(0, "STOPPING=1");
        (*sidecar)->Stop();
        watchdog.cancel();
        signals.cancel();
      };
  signals.async_wait(on_signal);

  uint64_t watchdog_usec = 0;
  if (sd_watchdog_enabled(0, &watchdog_usec) > 0) {
    KeepWatchdogFed(watchdog, std::chrono::microseconds(watchdog_usec / 2));
  }
  sd_notify(0, "READY=1");

  // Runs until Stop() has closed everything: every pending operation ends.
  io.run();
  return 0;
}
