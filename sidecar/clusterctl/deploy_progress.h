// What `clusterctl deploy` and `rollback` show while a new commit spreads over the
// cluster: the state of each server read from a sidecar's GET /status, the live
// progress line for a terminal, the summary table, and the JSON event lines for
// scripts; and `clusterctl deployments`' table. Pure functions of their inputs (no
// I/O, no clock), so they are unit-tested alone; thread-safe.
#ifndef CLUSTER_BALANCE_SIDECAR_CLUSTERCTL_DEPLOY_PROGRESS_H_
#define CLUSTER_BALANCE_SIDECAR_CLUSTERCTL_DEPLOY_PROGRESS_H_

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace cb {

// Characters of a commit id shown in tables and progress lines.
inline constexpr std::size_t kShortCommit = 10;
std::string ShortCommit(std::string_view commit);

enum class ServerOutcome { kBehind, kCurrent, kFailed };
std::string_view ServerOutcomeName(ServerOutcome outcome);  // "behind", "current", "failed"

struct ServerProgress {
  std::string id;
  std::string state;   // "up", "draining", "down" (as the sidecar says), "-" when absent
  std::string commit;  // the commit it reports for the deployment; empty for none
  std::string error;   // its last failure for the deployment; empty for none
  ServerOutcome outcome = ServerOutcome::kBehind;

  // Whether the deploy waits for this server: it is up or draining.
  bool counted() const { return state == "up" || state == "draining"; }
  bool operator==(const ServerProgress&) const = default;
};

struct Convergence {
  std::vector<ServerProgress> servers;  // in the order GET /status lists them

  int total() const;      // counted servers
  int converged() const;  // counted servers on the commit
  int failed() const;     // counted servers that reported a failure
  // Every counted server is current or failed: waiting longer changes nothing.
  bool settled() const;
  // Every counted server is current.
  bool ok() const { return converged() == total(); }
};

// Each server's progress towards `commit` of `deployment` (e.g.
// "production/webapp/default/shop") from a GET /status answer. A server on the
// commit is current; one whose error is not empty and differs from its entry in
// `errors_before` (what it reported before this deploy began: an old failure is
// not this deploy's) has failed; any other is behind. Malformed JSON yields what
// could be read, never an exception.
Convergence ReadConvergence(const nlohmann::json& status, const std::string& deployment,
                            const std::string& commit,
                            const std::map<std::string, std::string>& errors_before = {});

// Each server's error for `deployment` in a GET /status answer, by id (for
// ReadConvergence's `errors_before`).
std::map<std::string, std::string> ReadDeployErrors(const nlohmann::json& status,
                                                    const std::string& deployment);

// The servers of `now` whose state, commit, error or outcome differ from `before`
// (or that `before` did not list): what deserves an event.
std::vector<ServerProgress> ChangedServers(const Convergence& before, const Convergence& now);

// Terminal rendering: one line each, without a line end (the caller rewrites it
// in place with '\r').
std::string RenderUploadLine(uint64_t sent, uint64_t total);  // "uploading 12.3/50.0 MiB"
// "converged 3/5: app-a ✓ app-b ✓ app-c … app-d … app-e ✗" (counted servers only).
std::string RenderConvergenceLine(const Convergence& convergence);

// The per-server summary after the wait: server, state, commit (short), result
// ("current", "failed: <error>", "behind"), then a closing line saying whether
// every server converged and naming the ones that did not. `timed_out` says the
// wait ended at its timeout.
std::string RenderConvergenceSummary(const Convergence& convergence, bool timed_out);

// The answer of POST /deploy (or /rollback) for a person: "stored <deployment> as
// <short> (N files, X MiB) on app-a, app-b", or "unchanged: <webapp> is already
// <short>"; for a rollback "rolled back <deployment> to <short> as <short>".
std::string RenderStoredLine(const nlohmann::json& reply, const std::string& webapp);

// Script rendering: one JSON object per line (with its '\n'), each with "event".
std::string UploadedEvent(uint64_t bytes);  // {"event":"uploaded","bytes":N}
// {"event":"stored","deployment":..,"commit":..,"unchanged":..} (plus "to" for a rollback)
std::string StoredEvent(const nlohmann::json& reply);
// {"event":"server","id":..,"commit":..,"state":"current|failed|behind","error":..}
std::string ServerEvent(const ServerProgress& server);
// {"event":"done","converged":N,"total":M,"ok":..,"timed_out":..}
std::string DoneEvent(const Convergence& convergence, bool timed_out);

// GET /deployments as text: per deployment a title line, then its versions
// (newest first, as the sidecar lists them) with commit (short), version, time
// (UTC, ISO 8601), author and message; the current one marked "*".
std::string RenderDeploymentsTable(const nlohmann::json& deployments);

// "2024-05-01T12:00:00Z".
std::string IsoTimeUtc(int64_t unix_seconds);

}  // namespace cb

#endif  // CLUSTER_BALANCE_SIDECAR_CLUSTERCTL_DEPLOY_PROGRESS_H_
