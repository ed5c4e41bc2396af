// The cluster view: what a sidecar knows of every server, in the fixed binary
// layout that it publishes into a memory-mapped file for the nginx and httpd
// modules (see view_file.h for the file and its seqlock).
//
// Layout contract (format version 2). The file is local to one machine, so fields
// are in native byte order. The file is exactly sizeof(ViewImage) bytes:
//
//   ViewFileHeader  magic "CBVW", format version, sizes, seqlock sequence
//   ClusterView     generation, publish time, slow start, cluster name,
//                   64 ViewServer slots; slot i holds the server of index i,
//                   8 ViewDeployment slots: per deployed webapp, its current
//                   commit and which server runs which commit
//
// Strings are NUL-terminated inside their fixed capacity (at most capacity-1 bytes
// of text). Any change to these structs is a new format version: readers refuse
// versions they do not know, so an old nginx module keeps running on its fallback
// servers instead of misreading a newer sidecar's view. Version 2 appended the
// deployments to version 1's layout (which it keeps byte for byte); a module built
// for version 1 refuses a version 2 file and balances over its own server lines
// until it is upgraded, as it does without a sidecar: that is the compatibility
// story, chosen over publishing two files.
//
// ClusterView is a plain value (trivially copyable). It is not thread-safe to
// mutate concurrently; readers get their own copy from ViewReader.
#ifndef CLUSTER_BALANCE_SHARED_CLUSTER_VIEW_H_
#define CLUSTER_BALANCE_SHARED_CLUSTER_VIEW_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>

#include "shared/route_codec.h"
#include "shared/server_set.h"
#include "shared/status.h"

namespace cb {

enum class ServerState : uint8_t {
  kAbsent = 0,    // no server has this index
  kUp = 1,        // takes new and existing sessions
  kDraining = 2,  // keeps its existing sessions, takes no new ones
  kDown = 3,      // takes nothing; its sessions go to their backup
};

std::string_view ServerStateName(ServerState state);

inline constexpr std::size_t kViewIdCapacity = 64;
inline constexpr std::size_t kViewAddressCapacity = 64;
inline constexpr std::size_t kViewVersionCapacity = 48;
inline constexpr std::size_t kViewClusterNameCapacity = 64;

// One server's slot. Field order and sizes are part of the file format.
struct ViewServer {
  uint8_t state = 0;  // a ServerState
  uint8_t index = 0;  // equals the slot number when state != kAbsent
  uint8_t flags = 0;  // kFlagDynamic
  uint8_t reserved = 0;
  uint32_t weight = 0;
  uint64_t incarnation = 0;
  int64_t up_since_unix_ms = 0;  // start of warm-up (slow start); 0 = none
  char id[kViewIdCapacity] = {};
  char cluster_address[kViewAddressCapacity] = {};
  char http_address[kViewAddressCapacity] = {};
  char deployed_version[kViewVersionCapacity] = {};  // e.g. a git commit id; "" = none

  static constexpr uint8_t kFlagDynamic = 1;

  ServerState server_state() const { return static_cast<ServerState>(state); }
  std::string_view id_view() const;
  std::string_view cluster_address_view() const;
  std::string_view http_address_view() const;
  std::string_view deployed_version_view() const;

  // Setters refuse text that does not fit (capacity - 1 bytes) or holds a NUL.
  Status SetId(std::string_view text);
  Status SetClusterAddress(std::string_view text);
  Status SetHttpAddress(std::string_view text);
  Status SetDeployedVersion(std::string_view text);
};

inline constexpr std::size_t kViewMaxDeployments = 8;
inline constexpr std::size_t kViewDeploymentNameCapacity = 128;  // "production/webapp/default/shop"
inline constexpr std::size_t kViewCommitCapacity = 48;           // 40 hex digits + NUL, padded
inline constexpr std::size_t kViewCommitBytes = 20;              // a SHA-1 Git object id

// One deployed webapp (its Git tag name without the version, DESIGN.md
// "Deployment") and the version each server runs, so that new sessions can be
// kept on the servers that run the newest one during a rollout (routing.h).
// Field order and sizes are part of the file format.
struct ViewDeployment {
  char name[kViewDeploymentNameCapacity] = {};  // "" = empty slot
  char commit[kViewCommitCapacity] = {};  // the current (newest) version's commit: 40 lowercase hex
  uint64_t current_servers = 0;           // bit i: server i runs `commit`
  uint64_t reported_servers = 0;  // bit i: server i has reported a commit for this deployment
  uint8_t server_commits[kMaxServers][kViewCommitBytes] = {};  // binary; all zero = none

  std::string_view name_view() const;
  std::string_view commit_view() const;
  bool used() const { return name[0] != '\0'; }

  // Refuses text that does not fit or holds a NUL.
  Status SetName(std::string_view text);
  // `hex`: 40 hex digits (stored in lower case), or "" for none; anything else is
  // refused and changes nothing. Recomputes current_servers from server_commits.
  Status SetCommit(std::string_view hex);

  // Server `index`'s deployed commit as 40 lowercase hex digits; "" when it has
  // none or `index` is out of range.
  std::string ServerCommitHex(int index) const;
  // `hex` as for SetCommit ("" clears it). Keeps the bit sets in step: the server
  // is in reported_servers when it has a commit, in current_servers when that is
  // `commit`. InvalidArgument for an index outside 0..kMaxServers-1.
  Status SetServerCommit(int index, std::string_view hex);

  // Whether server `index` runs the current commit (its bit in current_servers).
  bool Runs(int index) const { return ServerSet::FromBits(current_servers).Contains(index); }
  ServerSet current() const { return ServerSet::FromBits(current_servers); }
  ServerSet reported() const { return ServerSet::FromBits(reported_servers); }
};

// The part of the file protected by the seqlock, and the value readers work on.
struct ClusterView {
  uint64_t generation = 0;  // grows with every change the sidecar publishes
  int64_t published_unix_ms = 0;
  uint32_t slow_start_ms = 0;    // weight ramp-up time of a server that comes up
  int32_t publisher_index = -1;  // index of the sidecar that wrote it; -1 = none
  char cluster_name[kViewClusterNameCapacity] = {};
  ViewServer servers[kMaxServers] = {};
  ViewDeployment deployments[kViewMaxDeployments] = {};

  std::string_view cluster_name_view() const;
  Status SetClusterName(std::string_view text);

  // Precondition: 0 <= index < kMaxServers.
  const ViewServer& server(int index) const { return servers[index]; }
  ViewServer& server(int index) { return servers[index]; }
  ServerState state(int index) const { return servers[index].server_state(); }

  // The indices whose state is `state`.
  ServerSet ServersIn(ServerState state) const;

  // The deployment `webapp` names: a used slot whose name is `webapp` or, for a
  // `webapp` without '/', whose last '/' segment is (a webapp deployed on several
  // stages or hosts must then be named in full: an ambiguous name finds none).
  // An empty `webapp` finds the only used slot when exactly one is. nullptr when
  // none matches.
  const ViewDeployment* FindDeployment(std::string_view webapp) const;

  // OK when every slot is internally consistent: a known state, index equal to the
  // slot, NUL-terminated strings, a non-empty id for every present server, a
  // deployment commit of 40 hex digits or none. Readers run this on every snapshot
  // they take, so a corrupt file is refused, not used.
  Status Validate() const;
};

inline constexpr uint32_t kViewMagic = 0x57564243;  // "CBVW" in little-endian memory
inline constexpr uint16_t kViewFormatVersion = 2;

struct ViewFileHeader {
  uint32_t magic = kViewMagic;
  uint16_t format_version = kViewFormatVersion;
  uint16_t header_bytes = 0;  // sizeof(ViewFileHeader)
  uint32_t file_bytes = 0;    // sizeof(ViewImage)
  uint32_t server_capacity = kMaxServers;
  // Seqlock sequence: odd while the writer is inside an update. Accessed only
  // through std::atomic_ref.
  uint64_t sequence = 0;
};

struct ViewImage {
  ViewFileHeader header;
  ClusterView view;
};

static_assert(std::is_trivially_copyable_v<ClusterView>);
static_assert(std::is_standard_layout_v<ViewImage>);
static_assert(sizeof(ViewServer) == 264);
static_assert(sizeof(ViewFileHeader) == 24);
static_assert(offsetof(ViewImage, view) == 24);
static_assert(sizeof(ViewDeployment) == 1472);
static_assert(offsetof(ClusterView, deployments) == 88 + 64 * 264);
static_assert(sizeof(ClusterView) == 88 + 64 * 264 + 8 * 1472);
static_assert(offsetof(ViewFileHeader, sequence) % 8 == 0);

}  // namespace cb

#endif  // CLUSTER_BALANCE_SHARED_CLUSTER_VIEW_H_
