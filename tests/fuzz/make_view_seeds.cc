// Writes the seed corpus of view_reader_fuzz: view files made by the real ViewWriter
// and damaged copies of them. Run it after a change to the view format:
//
//   cmake --build <build> --target make_view_seeds
//   <build>/tests/make_view_seeds tests/fuzz/corpus/view_reader
//
// Not a test; deterministic (fixed times and names), so re-running it reproduces
// the committed files byte for byte.
#include <unistd.h>

#include <cstddef>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <string_view>

#include "shared/cluster_view.h"
#include "shared/view_file.h"

namespace {

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

bool WriteAll(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return static_cast<bool>(out);
}

bool Check(const cb::Status& status, const char* what) {
  if (status.ok()) return true;
  std::fprintf(stderr, "make_view_seeds: %s: %s\n", what, status.ToString().c_str());
  return false;
}

constexpr std::string_view kNewCommit = "89abcdef0123456789abcdef0123456789abcdef";

// A cluster of five servers in every state, as a sidecar would publish it.
bool FillView(cb::ClusterView& view) {
  view.generation = 42;
  view.published_unix_ms = 1'700'000'000'000;
  view.slow_start_ms = 60'000;
  view.publisher_index = 0;
  bool ok = Check(view.SetClusterName("shop-prod"), "cluster name");
  const cb::ServerState states[] = {cb::ServerState::kUp, cb::ServerState::kUp,
                                    cb::ServerState::kDraining, cb::ServerState::kDown,
                                    cb::ServerState::kUp};
  for (int i = 0; i < 5; ++i) {
    cb::ViewServer& server = view.server(i);
    server.state = static_cast<uint8_t>(states[i]);
    server.index = static_cast<uint8_t>(i);
    server.weight = i == 3 ? 0 : 100;
    server.incarnation = 1000 + static_cast<uint64_t>(i);
    server.up_since_unix_ms = i == 4 ? view.published_unix_ms - 10'000 : 0;
    const std::string n = std::to_string(11 + i);
    ok = ok && Check(server.SetId("app-" + std::string(1, static_cast<char>('a' + i))), "id") &&
         Check(server.SetClusterAddress("10.0.0." + n + ":6800"), "cluster address") &&
         Check(server.SetHttpAddress("10.0.0." + n + ":8080"), "http address") &&
         Check(server.SetDeployedVersion("0123456789abcdef0123456789abcdef01234567"), "version");
  }
  // A dynamic server far out in the index space.
  cb::ViewServer& dynamic = view.server(40);
  dynamic.state = static_cast<uint8_t>(cb::ServerState::kUp);
  dynamic.index = 40;
  dynamic.flags = cb::ViewServer::kFlagDynamic;
  dynamic.weight = 1'000'000;
  ok = ok && Check(dynamic.SetId("dyn-1"), "id") &&
       Check(dynamic.SetClusterAddress("[fd00::40]:6800"), "cluster address") &&
       Check(dynamic.SetHttpAddress("[fd00::40]:8080"), "http address");
  // A rollout in progress: servers 0 and 1 run the new commit, 4 the old one.
  cb::ViewDeployment& shop = view.deployments[0];
  ok = ok && Check(shop.SetName("production/webapp/default/shop"), "deployment name") &&
       Check(shop.SetCommit(kNewCommit), "commit") &&
       Check(shop.SetServerCommit(0, kNewCommit), "server commit") &&
       Check(shop.SetServerCommit(1, kNewCommit), "server commit") &&
       Check(shop.SetServerCommit(4, "0123456789abcdef0123456789abcdef01234567"), "server commit");
  return ok;
}

template <typename T>
void Poke(std::string& image, std::size_t offset, T value) {
  std::memcpy(image.data() + offset, &value, sizeof(value));
}

constexpr std::size_t kViewAt = offsetof(cb::ViewImage, view);
constexpr std::size_t kServersAt = kViewAt + offsetof(cb::ClusterView, servers);
constexpr std::size_t kDeploymentsAt = kViewAt + offsetof(cb::ClusterView, deployments);

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <output directory>\n", argv[0]);
    return 2;
  }
  const std::string out = argv[1];
  const std::string scratch = out + "/.make_view_seeds.tmp";
  unlink(scratch.c_str());

  std::string empty;
  std::string valid;
  {
    cb::Result<std::unique_ptr<cb::ViewWriter>> writer = cb::ViewWriter::Open(scratch);
    if (!Check(writer.status(), "opening the writer")) return 1;
    empty = ReadAll(scratch);
    auto view = std::make_unique<cb::ClusterView>();
    if (!FillView(*view)) return 1;
    if (!Check((*writer)->Publish(*view), "publishing")) return 1;
    valid = ReadAll(scratch);
  }
  unlink(scratch.c_str());
  unlink((scratch + ".lock").c_str());
  if (valid.size() != sizeof(cb::ViewImage) || empty.size() != sizeof(cb::ViewImage)) {
    std::fprintf(stderr, "make_view_seeds: unexpected file size\n");
    return 1;
  }

  struct Seed {
    const char* name;
    std::string bytes;
  };
  std::string older_version = valid;  // version 1: before the deployments
  Poke<uint16_t>(older_version, offsetof(cb::ViewFileHeader, format_version),
                 cb::kViewFormatVersion - 1);
  std::string newer_version = valid;
  Poke<uint16_t>(newer_version, offsetof(cb::ViewFileHeader, format_version),
                 cb::kViewFormatVersion + 1);
  std::string bad_commit = valid;
  Poke<char>(bad_commit, kDeploymentsAt + offsetof(cb::ViewDeployment, commit) + 5, 'g');
  std::string bad_magic = valid;
  Poke<uint32_t>(bad_magic, offsetof(cb::ViewFileHeader, magic), 0x57564258);
  std::string odd_sequence = valid;  // a writer died mid-update
  Poke<uint64_t>(odd_sequence, offsetof(cb::ViewFileHeader, sequence), 7);
  std::string bad_state = valid;
  Poke<uint8_t>(bad_state, kServersAt + 2 * sizeof(cb::ViewServer), 9);
  std::string unterminated = valid;
  std::memset(unterminated.data() + kViewAt + offsetof(cb::ClusterView, cluster_name), 'x',
              cb::kViewClusterNameCapacity);

  const Seed seeds[] = {
      {"valid.view", valid},
      {"empty.view", empty},
      {"truncated-header.view", valid.substr(0, 16)},
      {"truncated-after-header.view", valid.substr(0, sizeof(cb::ViewFileHeader))},
      {"truncated-half.view", valid.substr(0, valid.size() / 2)},
      {"older-version.view", older_version},
      {"newer-version.view", newer_version},
      {"bad-commit.view", bad_commit},
      {"bad-magic.view", bad_magic},
      {"odd-sequence.view", odd_sequence},
      {"bad-state.view", bad_state},
      {"unterminated-name.view", unterminated},
      {"view-only.bin", valid.substr(kViewAt)},
  };
  for (const Seed& seed : seeds) {
    if (!WriteAll(out + "/" + seed.name, seed.bytes)) {
      std::fprintf(stderr, "make_view_seeds: cannot write %s/%s\n", out.c_str(), seed.name);
      return 1;
    }
  }
  std::printf("make_view_seeds: wrote %zu seeds to %s\n", std::size(seeds), out.c_str());
  return 0;
}
