// libFuzzer target: the view file reader (shared/view_file.h) and
// ClusterView::Validate (shared/cluster_view.h) on corrupt or foreign view files.
// A module maps whatever file sits at the configured path, so the reader must refuse
// anything that is not a whole, valid view of its format, and never read past the
// mapping.
//
// The input is the whole file: it is written to one temporary file per process
// (created once with mkstemp, rewritten and cut to size for every input), then opened
// with ViewReader::Open and read with Current(). When the input is at least a
// ClusterView long it is also copied into a ClusterView (from offset 0, and from the
// view's offset in the file when it is a whole image) and validated directly.
//
// Invariants (a violation traps): a view the reader returns passes Validate(); its
// strings stay inside their fields; a second Current() with no change returns the
// same view; every present server in a valid view has a non-empty id and its own
// index; routing over a valid view returns -1 or a present server.
#include <fcntl.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "shared/cluster_view.h"
#include "shared/route_codec.h"
#include "shared/routing.h"
#include "shared/view_file.h"

namespace {

#define FUZZ_CHECK(condition)           \
  do {                                  \
    if (!(condition)) __builtin_trap(); \
  } while (0)

struct TempFile {
  std::string path;
  int fd = -1;
};

// One file per process, made with mkstemp and unlinked at once: it is reached as
// /proc/self/fd/<fd>, so nothing is left behind however the fuzzer exits (libFuzzer
// ends with _Exit, which skips atexit handlers).
const TempFile& Temp() {
  static const TempFile file = [] {
    const char* dir = std::getenv("TMPDIR");
    std::string pattern =
        std::string(dir != nullptr && *dir != '\0' ? dir : "/tmp") + "/view_reader_fuzz.XXXXXX";
    TempFile created;
    created.fd = mkstemp(pattern.data());
    if (created.fd < 0) std::abort();
    unlink(pattern.c_str());
    created.path = "/proc/self/fd/" + std::to_string(created.fd);
    if (access(created.path.c_str(), R_OK) != 0) std::abort();  // needs Linux /proc
    return created;
  }();
  return file;
}

// Overwrites in place and then cuts the file to `size`: truncating to 0 first makes
// some file systems (ext4) flush on every input, a hundred times slower.
void WriteFile(const uint8_t* data, std::size_t size) {
  const TempFile& file = Temp();
  std::size_t written = 0;
  while (written < size) {
    const ssize_t n = pwrite(file.fd, data + written, size - written, static_cast<off_t>(written));
    if (n <= 0) std::abort();
    written += static_cast<std::size_t>(n);
  }
  if (ftruncate(file.fd, static_cast<off_t>(size)) != 0) std::abort();
}

template <std::size_t N>
void CheckField(std::string_view text, const char (&field)[N]) {
  FUZZ_CHECK(text.size() < N);
  FUZZ_CHECK(text.data() == field);
  FUZZ_CHECK(text.find('\0') == std::string_view::npos);
}

// What every consumer of a validated view relies on.
void CheckValidView(const cb::ClusterView& view) {
  CheckField(view.cluster_name_view(), view.cluster_name);
  FUZZ_CHECK(view.publisher_index >= -1 && view.publisher_index < cb::kMaxServers);
  cb::ServerSet present;
  for (int i = 0; i < cb::kMaxServers; ++i) {
    const cb::ViewServer& server = view.server(i);
    const cb::ServerState state = server.server_state();
    FUZZ_CHECK(cb::ServerStateName(state) != "invalid");
    CheckField(server.id_view(), server.id);
    CheckField(server.cluster_address_view(), server.cluster_address);
    CheckField(server.http_address_view(), server.http_address);
    CheckField(server.deployed_version_view(), server.deployed_version);
    if (state == cb::ServerState::kAbsent) continue;
    present.Add(i);
    FUZZ_CHECK(server.index == i);
    FUZZ_CHECK(!server.id_view().empty());
  }
  for (const cb::ViewDeployment& deployment : view.deployments) {
    CheckField(deployment.name_view(), deployment.name);
    CheckField(deployment.commit_view(), deployment.commit);
    FUZZ_CHECK(deployment.commit_view().empty() || deployment.commit_view().size() == 40);
    for (int i = 0; i < cb::kMaxServers; ++i) {
      const std::string hex = deployment.ServerCommitHex(i);
      FUZZ_CHECK(hex.empty() || hex.size() == 40);
    }
    if (deployment.used()) {
      // Its own full name finds it unless another slot has the same name.
      const cb::ViewDeployment* found = view.FindDeployment(deployment.name_view());
      FUZZ_CHECK(found == nullptr || found->name_view() == deployment.name_view());
    }
  }
  const cb::ServerSet sets = view.ServersIn(cb::ServerState::kUp) |
                             view.ServersIn(cb::ServerState::kDraining) |
                             view.ServersIn(cb::ServerState::kDown);
  FUZZ_CHECK(sets == present);

  // Route one request per route character plus a new session over the view. The
  // clock is near the view's own publish time, as on a live server.
  cb::RouteRequest request;
  request.now_unix_ms = view.published_unix_ms > 0 && view.published_unix_ms < (int64_t{1} << 50)
                            ? view.published_unix_ms
                            : 1'700'000'000'000;
  request.random = view.generation;
  cb::RoutingOptions current_version_only;
  current_version_only.current_version_only = true;
  const cb::RoutingTable preferring(view, current_version_only);
  FUZZ_CHECK(preferring.preferred().Without(view.ServersIn(cb::ServerState::kUp)).empty());
  const cb::RoutingTable table(view);
  FUZZ_CHECK(table.up() == view.ServersIn(cb::ServerState::kUp));
  FUZZ_CHECK(table.draining() == view.ServersIn(cb::ServerState::kDraining));
  char session[2] = {'\0', 'x'};
  for (int route = -1; route < cb::kMaxServers; ++route) {
    session[0] = route < 0 ? '~' : cb::RouteCharForIndex(route);
    request.session_id = std::string_view(session, 2);
    const cb::RouteChoice choice = table.Choose(request);
    if (choice.index < 0) {
      FUZZ_CHECK(choice.reason == cb::RouteReason::kNoServer);
      continue;
    }
    FUZZ_CHECK(choice.index < cb::kMaxServers);
    const cb::ServerState state = view.state(choice.index);
    FUZZ_CHECK(state == cb::ServerState::kUp || state == cb::ServerState::kDraining);
  }
}

void FuzzReader() {
  cb::Result<std::unique_ptr<cb::ViewReader>> reader = cb::ViewReader::Open(Temp().path);
  if (!reader.ok()) {
    FUZZ_CHECK(!reader.status().message().empty());
    return;
  }
  cb::Result<const cb::ClusterView*> current = (*reader)->Current();
  if (!current.ok()) {
    FUZZ_CHECK(!current.status().message().empty());
    return;
  }
  const cb::ClusterView* view = *current;
  FUZZ_CHECK(view != nullptr);
  FUZZ_CHECK(view->Validate().ok());
  CheckValidView(*view);
  // Nothing changed: the cached snapshot comes back.
  cb::Result<const cb::ClusterView*> again = (*reader)->Current();
  FUZZ_CHECK(again.ok() && *again == view);
  FUZZ_CHECK(!(*reader)->MappingIsStale());
}

void FuzzValidate(const uint8_t* bytes) {
  auto view = std::make_unique<cb::ClusterView>();
  std::memcpy(static_cast<void*>(view.get()), bytes, sizeof(cb::ClusterView));
  const cb::Status status = view->Validate();
  if (!status.ok()) {
    FUZZ_CHECK(status.code() == cb::Status::Code::kInvalidArgument);
    FUZZ_CHECK(!status.message().empty());
    return;
  }
  CheckValidView(*view);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  WriteFile(data, size);
  FuzzReader();
  if (size >= sizeof(cb::ClusterView)) FuzzValidate(data);
  if (size >= sizeof(cb::ViewImage)) FuzzValidate(data + offsetof(cb::ViewImage, view));
  return 0;
}
