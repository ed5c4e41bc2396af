#include "shared/view_file.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

namespace cb {
namespace {

using std::chrono::steady_clock;

constexpr std::size_t kViewOffset = offsetof(ViewImage, view);
constexpr std::size_t kSequenceOffset = offsetof(ViewFileHeader, sequence);

uint64_t Mix(uint64_t x) {  // splitmix64's finalizer
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Writes text and numbers into a zeroed fixed-capacity field, without allocating
// (the stress tests build one view per publish and per generation a reader sees).
class FieldWriter {
 public:
  template <std::size_t N>
  explicit FieldWriter(char (&field)[N]) : next_(field), end_(field + N - 1) {}
  FieldWriter& operator<<(std::string_view text) {
    EXPECT_LE(text.size(), static_cast<std::size_t>(end_ - next_));
    std::memcpy(next_, text.data(), text.size());
    next_ += text.size();
    return *this;
  }
  FieldWriter& operator<<(uint64_t number) {
    const std::to_chars_result result = std::to_chars(next_, end_, number);
    EXPECT_EQ(result.ec, std::errc());
    next_ = result.ptr;
    return *this;
  }

 private:
  char* next_;
  char* end_;
};

// A view in which every header field and every field of every present server
// encodes `g`, and the set of present slots depends on `g`; two different
// generations differ in many bytes spread over the whole image.
ClusterView MakeView(uint64_t g) {
  ClusterView view;
  view.generation = g;
  view.published_unix_ms = static_cast<int64_t>(g) * 7;
  view.slow_start_ms = static_cast<uint32_t>(g);
  view.publisher_index = static_cast<int32_t>(g % kMaxServers);
  FieldWriter(view.cluster_name) << "cluster-" << g;
  const uint64_t present = Mix(g) | (uint64_t{1} << (g % kMaxServers));
  for (uint64_t i = 0; i < kMaxServers; ++i) {
    if ((present >> i & 1) == 0) continue;
    ViewServer& s = view.server(static_cast<int>(i));
    s.state = static_cast<uint8_t>(1 + (g + i) % 3);
    s.index = static_cast<uint8_t>(i);
    s.flags = ((g + i) & 1) != 0 ? ViewServer::kFlagDynamic : 0;
    s.reserved = 0;
    s.weight = static_cast<uint32_t>(g);
    s.incarnation = g;
    s.up_since_unix_ms = static_cast<int64_t>(g);
    FieldWriter(s.id) << "s" << g << "-" << i;
    FieldWriter(s.cluster_address) << "10.0." << i << ".1:" << g;
    FieldWriter(s.http_address) << "h" << g << "-" << i << ":8080";
    FieldWriter(s.deployed_version) << "v" << g;
  }
  return view;
}

bool SameBytes(const ClusterView& a, const ClusterView& b) {
  return std::memcmp(&a, &b, sizeof(ClusterView)) == 0;
}

// The first byte offset where `a` and `b` differ, for failure messages.
std::size_t FirstDifference(const ClusterView& a, const ClusterView& b) {
  const auto* x = reinterpret_cast<const unsigned char*>(&a);
  const auto* y = reinterpret_cast<const unsigned char*>(&b);
  for (std::size_t i = 0; i < sizeof(ClusterView); ++i) {
    if (x[i] != y[i]) return i;
  }
  return sizeof(ClusterView);
}

ViewFileHeader GoodHeader(uint64_t sequence) {
  ViewFileHeader header;
  header.header_bytes = sizeof(ViewFileHeader);
  header.file_bytes = sizeof(ViewImage);
  header.sequence = sequence;
  return header;
}

void WriteFileBytes(const std::string& path, const void* data, std::size_t size) {
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0) << path << ": " << std::strerror(errno);
  const ssize_t written = size == 0 ? 0 : write(fd, data, size);
  close(fd);
  ASSERT_EQ(written, static_cast<ssize_t>(size));
}

void WriteImage(const std::string& path, const ViewImage& image, std::size_t size) {
  ASSERT_LE(size, sizeof(ViewImage));
  WriteFileBytes(path, &image, size);
}

// pwrite into an existing file without truncating it (a mapped file stays mapped).
void PatchFile(const std::string& path, std::size_t offset, const void* data, std::size_t size) {
  const int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0) << path << ": " << std::strerror(errno);
  const ssize_t written = pwrite(fd, data, size, static_cast<off_t>(offset));
  close(fd);
  ASSERT_EQ(written, static_cast<ssize_t>(size));
}

uint64_t ReadSequence(const std::string& path) {
  uint64_t sequence = 0;
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  EXPECT_GE(fd, 0) << path;
  if (fd < 0) return 0;
  EXPECT_EQ(pread(fd, &sequence, sizeof(sequence), kSequenceOffset),
            static_cast<ssize_t>(sizeof(sequence)));
  close(fd);
  return sequence;
}

void WriteSequence(const std::string& path, uint64_t sequence) {
  PatchFile(path, kSequenceOffset, &sequence, sizeof(sequence));
}

ino_t InodeOf(const std::string& path) {
  struct stat info {};
  EXPECT_EQ(stat(path.c_str(), &info), 0) << path;
  return info.st_ino;
}

std::vector<std::string> DirectoryEntries(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

class ViewFileTest : public testing::Test {
 protected:
  void SetUp() override {
    std::string base = testing::TempDir();
    if (base.empty()) base = "/tmp/";
    if (base.back() != '/') base += '/';
    std::string pattern = base + "view_file_test.XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr) << pattern << ": " << std::strerror(errno);
    dir_ = pattern;
    path_ = dir_ + "/cluster.view";
  }

  void TearDown() override {
    if (child_ > 0) {
      kill(child_, SIGKILL);
      waitpid(child_, nullptr, 0);
      child_ = -1;
    }
    if (!dir_.empty()) {
      std::error_code ignored;
      std::filesystem::remove_all(dir_, ignored);
    }
  }

  std::unique_ptr<ViewWriter> OpenWriter() {
    auto writer = ViewWriter::Open(path_);
    EXPECT_TRUE(writer.ok()) << writer.status().ToString();
    return writer.ok() ? std::move(writer).value() : nullptr;
  }

  std::unique_ptr<ViewReader> OpenReader() {
    auto reader = ViewReader::Open(path_);
    EXPECT_TRUE(reader.ok()) << reader.status().ToString();
    return reader.ok() ? std::move(reader).value() : nullptr;
  }

  // The generation of the reader's current view, or ~0 on error.
  static uint64_t GenerationOf(ViewReader& reader) {
    auto view = reader.Current();
    EXPECT_TRUE(view.ok()) << view.status().ToString();
    return view.ok() ? (*view)->generation : ~uint64_t{0};
  }

  std::string dir_;
  std::string path_;
  pid_t child_ = -1;
};

// ---------------------------------------------------------------------------------
// Torn-read stress

// The stress writers publish in bursts of 1..32 views back to back (so readers'
// copies overlap updates all the time), then wait, at most 2 ms and yielding the
// CPU, until every reader has seen the burst's last generation. A seqlock writer
// that never pauses starves its readers (every copy overlaps the next update, so a
// reader keeps returning its old copy), and on a machine with fewer cores than
// threads a writer that never yields rarely runs next to a reader; the bounded
// catch-up keeps the number of generations each reader sees high under any load.
//
// They write for at least the minimum time, and on a loaded machine keep going (up
// to the maximum) until every reader has seen kTargetChanges new generations; then
// they require more than 1000, so they cannot pass vacuously.
// The writer stops once every reader has seen kTargetChanges generations (after
// the minimum time); the maximum only bounds a run on a loaded machine (ASan,
// the other tests on the same 2 cores), where reaching the target takes longer.
constexpr auto kMinWriteTime = std::chrono::seconds(3);
constexpr auto kMaxWriteTime = std::chrono::seconds(25);
constexpr auto kMinChildWriteTime = std::chrono::seconds(2);
constexpr auto kMaxChildWriteTime = std::chrono::seconds(25);
constexpr auto kCatchUpTime = std::chrono::milliseconds(2);
constexpr uint64_t kTargetChanges = 2000;
constexpr int kMaxReaders = 3;

// What the readers tell the writer; lives in memory shared with a writer process.
struct StressBoard {
  std::atomic<uint64_t> seen[kMaxReaders];  // each reader's newest generation
  std::atomic<uint32_t> satisfied;          // readers that reached kTargetChanges

  explicit StressBoard(uint64_t start) : satisfied(0) {
    for (auto& s : seen) s.store(start);
  }
};
static_assert(std::atomic<uint64_t>::is_always_lock_free);
static_assert(std::atomic<uint32_t>::is_always_lock_free);

// Publishes generations 2, 3, ... until the deadlines say stop; returns the last
// one, or 0 when a Publish failed (`failure` says why).
uint64_t RunStressWriter(ViewWriter& writer, StressBoard& board, int readers,
                         std::chrono::nanoseconds min_time, std::chrono::nanoseconds max_time,
                         std::atomic<uint64_t>* last_published, std::string* failure) {
  const auto start = steady_clock::now();
  uint64_t g = 1;
  for (;;) {
    const auto now = steady_clock::now();
    if (now >= start + max_time) break;
    if (now >= start + min_time && board.satisfied.load() == static_cast<uint32_t>(readers)) break;
    const uint64_t burst = 1 + Mix(g) % 32;
    for (uint64_t i = 0; i < burst; ++i) {
      if (Status published = writer.Publish(MakeView(++g)); !published.ok()) {
        if (failure != nullptr) *failure = published.ToString();
        return 0;
      }
      if (last_published != nullptr) last_published->store(g);
    }
    const auto catch_up = steady_clock::now() + kCatchUpTime;
    for (int r = 0; r < readers; ++r) {
      while (board.seen[r].load() < g && steady_clock::now() < catch_up) std::this_thread::yield();
    }
  }
  return g;
}

struct ReaderStats {
  uint64_t reads = 0;
  uint64_t changes = 0;  // reads whose generation differed from the previous read
  uint64_t first_generation = 0;
  uint64_t last_generation = 0;
  uint64_t failures = 0;
  std::string first_failure;

  void Fail(const std::string& why) {
    if (failures++ == 0) first_failure = why;
  }
};

// Checks one returned view: whole (every byte matches the view of its own
// generation) and not older than the previous one.
class ViewChecker {
 public:
  void Check(const ClusterView& view, ReaderStats& stats) {
    ++stats.reads;
    const uint64_t g = view.generation;
    // The same copy as last time (a new copy is allocated while the old one is
    // alive, so it never has the old address): already checked.
    if (&view == last_copy_ && g == stats.last_generation) return;
    last_copy_ = &view;
    if (!have_expected_ || g != expected_.generation) {
      expected_ = MakeView(g);
      have_expected_ = true;
    }
    if (!SameBytes(view, expected_)) {
      stats.Fail("torn view: generation " + std::to_string(g) +
                 " differs from its own image at byte " +
                 std::to_string(FirstDifference(view, expected_)));
    }
    if (stats.reads == 1) {
      stats.first_generation = g;
    } else if (g < stats.last_generation) {
      stats.Fail("generation went backwards: " + std::to_string(stats.last_generation) + " -> " +
                 std::to_string(g));
    } else if (g != stats.last_generation) {
      ++stats.changes;
    }
    stats.last_generation = g;
  }

 private:
  ClusterView expected_;
  bool have_expected_ = false;
  const ClusterView* last_copy_ = nullptr;
};

// One read of a stress reader: check it, and tell the writer what was seen.
// True when the read saw a new generation.
bool StressRead(ViewReader& reader, ViewChecker& checker, ReaderStats& stats, StressBoard& board,
                int r) {
  auto view = reader.Current();
  if (!view.ok()) {
    stats.Fail("Current() failed: " + view.status().ToString());
    return false;
  }
  const uint64_t changes = stats.changes;
  checker.Check(**view, stats);
  board.seen[r].store((*view)->generation);
  if (changes < kTargetChanges && stats.changes >= kTargetChanges) board.satisfied.fetch_add(1);
  return stats.changes != changes;
}

void PrintStats(const char* who, const ReaderStats& s) {
  std::printf("[ stress   ] %s: %llu reads, %llu distinct generations (%llu..%llu)\n", who,
              static_cast<unsigned long long>(s.reads),
              static_cast<unsigned long long>(s.changes + 1),
              static_cast<unsigned long long>(s.first_generation),
              static_cast<unsigned long long>(s.last_generation));
}

TEST_F(ViewFileTest, StressReadersInThreadsNeverSeeATornView) {
  constexpr int kReaders = 3;
  auto writer = OpenWriter();
  ASSERT_NE(writer, nullptr);
  ASSERT_TRUE(writer->Publish(MakeView(1)).ok());

  std::vector<std::unique_ptr<ViewReader>> readers;
  for (int r = 0; r < kReaders; ++r) {
    readers.push_back(OpenReader());
    ASSERT_NE(readers.back(), nullptr);
    ASSERT_EQ(GenerationOf(*readers.back()), 1u);  // every reader starts with a good copy
  }

  StressBoard board(1);
  std::atomic<bool> writer_done{false};
  std::atomic<uint64_t> last_published{1};
  std::string writer_failure;
  const auto start = steady_clock::now();
  const auto hard_deadline = start + kMaxWriteTime + std::chrono::seconds(5);

  std::vector<ReaderStats> stats(kReaders);
  std::vector<std::thread> threads;
  for (int r = 0; r < kReaders; ++r) {
    threads.emplace_back([&, r] {
      ViewReader& reader = *readers[static_cast<std::size_t>(r)];
      ReaderStats& mine = stats[static_cast<std::size_t>(r)];
      ViewChecker checker;
      uint64_t unchanged = 0;
      while (!writer_done.load() && steady_clock::now() < hard_deadline) {
        // Nothing new for a while: let the writer run (there may be more threads than cores).
        if (StressRead(reader, checker, mine, board, r)) {
          unchanged = 0;
        } else if (++unchanged % 256 == 0) {
          std::this_thread::yield();
        }
      }
      // The writer is finished: one more read must see its last view.
      (void)StressRead(reader, checker, mine, board, r);
      if (mine.last_generation != last_published.load()) {
        mine.Fail("final read saw generation " + std::to_string(mine.last_generation) + ", not " +
                  std::to_string(last_published.load()));
      }
    });
  }
  std::thread writer_thread([&] {
    RunStressWriter(*writer, board, kReaders, kMinWriteTime, kMaxWriteTime, &last_published,
                    &writer_failure);
    writer_done.store(true);
  });
  writer_thread.join();
  for (auto& thread : threads) thread.join();

  EXPECT_EQ(writer_failure, "");
  const uint64_t published = last_published.load();
  std::printf("[ stress   ] threads: writer published %llu generations in %.1f s\n",
              static_cast<unsigned long long>(published),
              std::chrono::duration<double>(steady_clock::now() - start).count());
  for (int r = 0; r < kReaders; ++r) {
    const ReaderStats& s = stats[static_cast<std::size_t>(r)];
    PrintStats(("reader " + std::to_string(r)).c_str(), s);
    EXPECT_EQ(s.failures, 0u) << "reader " << r << ": " << s.first_failure;
    EXPECT_GT(s.reads, 1000u) << "reader " << r;
    EXPECT_GT(s.changes, 1000u) << "reader " << r << " saw too few generations to mean anything";
    EXPECT_EQ(s.last_generation, published) << "reader " << r;
  }
}

TEST_F(ViewFileTest, StressReaderSeesWholeViewsFromAWriterProcess) {
  {
    auto writer = OpenWriter();
    ASSERT_NE(writer, nullptr);
    ASSERT_TRUE(writer->Publish(MakeView(1)).ok());
  }  // the child takes over the file (and its lock)
  auto reader = OpenReader();
  ASSERT_NE(reader, nullptr);
  ASSERT_EQ(GenerationOf(*reader), 1u);

  // The board lives in memory shared with the child.
  void* shared =
      mmap(nullptr, sizeof(StressBoard), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(shared, MAP_FAILED) << std::strerror(errno);
  const std::unique_ptr<void, void (*)(void*)> unmap(
      shared, [](void* p) { munmap(p, sizeof(StressBoard)); });
  StressBoard& board = *new (shared) StressBoard(1);

  std::fflush(nullptr);  // nothing buffered twice
  const pid_t pid = fork();
  ASSERT_GE(pid, 0) << std::strerror(errno);
  if (pid == 0) {
    // The child: the sidecar. No gtest here; the exit code says what went wrong.
    auto writer = ViewWriter::Open(path_);
    if (!writer.ok()) _exit(2);
    if (RunStressWriter(**writer, board, 1, kMinChildWriteTime, kMaxChildWriteTime, nullptr,
                        nullptr) == 0) {
      _exit(3);
    }
    _exit(0);
  }
  child_ = pid;

  ReaderStats stats;
  ViewChecker checker;
  const auto hard_deadline = steady_clock::now() + kMaxChildWriteTime + std::chrono::seconds(5);
  int wait_status = 0;
  bool exited = false;
  uint64_t unchanged = 0;
  for (uint64_t loop = 1; steady_clock::now() < hard_deadline; ++loop) {
    // Nothing new for a while: let the writer run (the machine may be busy).
    if (StressRead(*reader, checker, stats, board, 0)) {
      unchanged = 0;
    } else if (++unchanged % 256 == 0) {
      std::this_thread::yield();
    }
    if (loop % 256 == 0) {
      const pid_t waited = waitpid(pid, &wait_status, WNOHANG);
      ASSERT_NE(waited, -1) << std::strerror(errno);
      if (waited == pid) {
        exited = true;
        child_ = -1;
        break;
      }
    }
  }
  ASSERT_TRUE(exited) << "the writer process did not finish in time";
  ASSERT_TRUE(WIFEXITED(wait_status)) << "writer process status " << wait_status;
  EXPECT_EQ(WEXITSTATUS(wait_status), 0) << "writer process failed (2: open, 3: publish)";

  // After the writer exited, the view is stable and whole.
  auto final_view = reader->Current();
  ASSERT_TRUE(final_view.ok()) << final_view.status().ToString();
  checker.Check(**final_view, stats);
  EXPECT_EQ(reader->Current().value(), final_view.value());  // stable: same copy
  EXPECT_FALSE(reader->MappingIsStale());                    // updated in place

  PrintStats("process reader", stats);
  EXPECT_EQ(stats.failures, 0u) << stats.first_failure;
  EXPECT_GT(stats.reads, 1000u);
  EXPECT_GT(stats.changes, 1000u) << "saw too few generations to mean anything";
  EXPECT_GT(stats.last_generation, 1000u);
}

// ---------------------------------------------------------------------------------
// The reader refuses files it cannot read

TEST_F(ViewFileTest, ReaderRefusesMissingFile) {
  auto reader = ViewReader::Open(path_);
  ASSERT_FALSE(reader.ok());
  EXPECT_EQ(reader.status().code(), Status::Code::kNotFound);
  EXPECT_NE(reader.status().message().find(path_), std::string::npos) << reader.status().message();
}

TEST_F(ViewFileTest, ReaderRefusesEmptyFile) {
  WriteFileBytes(path_, "", 0);
  auto reader = ViewReader::Open(path_);
  ASSERT_FALSE(reader.ok());
  EXPECT_EQ(reader.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(reader.status().message().find(path_), std::string::npos) << reader.status().message();
  EXPECT_NE(reader.status().message().find("truncated"), std::string::npos)
      << reader.status().message();
}

TEST_F(ViewFileTest, ReaderRefusesTruncatedFile) {
  auto image = std::make_unique<ViewImage>();
  image->header = GoodHeader(2);
  for (const std::size_t size :
       {std::size_t{10}, sizeof(ViewFileHeader), sizeof(ViewFileHeader) + 1, sizeof(ViewImage) / 2,
        sizeof(ViewImage) - 1}) {
    SCOPED_TRACE("file of " + std::to_string(size) + " bytes");
    WriteImage(path_, *image, size);
    auto reader = ViewReader::Open(path_);
    ASSERT_FALSE(reader.ok());
    EXPECT_EQ(reader.status().code(), Status::Code::kInvalidArgument);
    const std::string message = reader.status().message();
    EXPECT_NE(message.find(path_), std::string::npos) << message;
    EXPECT_NE(message.find("truncated"), std::string::npos) << message;
    EXPECT_NE(message.find(std::to_string(size)), std::string::npos) << message;
  }
  // The same image, whole, is accepted: the refusals above were about the size.
  WriteImage(path_, *image, sizeof(ViewImage));
  auto reader = ViewReader::Open(path_);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
}

TEST_F(ViewFileTest, ReaderRefusesWrongMagic) {
  auto image = std::make_unique<ViewImage>();
  image->header = GoodHeader(2);
  image->header.magic = 0x57564244;  // "DBVW"
  WriteImage(path_, *image, sizeof(ViewImage));
  auto reader = ViewReader::Open(path_);
  ASSERT_FALSE(reader.ok());
  EXPECT_EQ(reader.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(reader.status().message().find(path_), std::string::npos) << reader.status().message();
  EXPECT_NE(reader.status().message().find("magic"), std::string::npos)
      << reader.status().message();

  // Not a view file at all: text.
  const std::string text(sizeof(ViewImage), 'x');
  WriteFileBytes(path_, text.data(), text.size());
  reader = ViewReader::Open(path_);
  ASSERT_FALSE(reader.ok());
  EXPECT_EQ(reader.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(reader.status().message().find("magic"), std::string::npos)
      << reader.status().message();
}

TEST_F(ViewFileTest, ReaderRefusesOtherFormatVersion) {
  auto image = std::make_unique<ViewImage>();
  // 1: an older sidecar's (without deployments); 3: a newer one's.
  for (const uint16_t version : {uint16_t{0}, uint16_t{1}, uint16_t{3}, uint16_t{0xffff}}) {
    SCOPED_TRACE("version " + std::to_string(version));
    image->header = GoodHeader(2);
    image->header.format_version = version;
    WriteImage(path_, *image, sizeof(ViewImage));
    auto reader = ViewReader::Open(path_);
    ASSERT_FALSE(reader.ok());
    EXPECT_EQ(reader.status().code(), Status::Code::kUnsupported);
    const std::string message = reader.status().message();
    EXPECT_NE(message.find(path_), std::string::npos) << message;
    EXPECT_NE(message.find("version " + std::to_string(version)), std::string::npos) << message;
  }
  // A newer version is refused even when its file is larger than ours (a newer layout).
  {
    image->header = GoodHeader(2);
    image->header.format_version = 3;
    std::string bytes(reinterpret_cast<const char*>(image.get()), sizeof(ViewImage));
    bytes.append(4096, '\0');
    WriteFileBytes(path_, bytes.data(), bytes.size());
    auto reader = ViewReader::Open(path_);
    ASSERT_FALSE(reader.ok());
    EXPECT_EQ(reader.status().code(), Status::Code::kUnsupported);
  }
}

TEST_F(ViewFileTest, ReaderRefusesWrongHeaderSizes) {
  auto image = std::make_unique<ViewImage>();
  struct Case {
    const char* name;
    void (*mutate)(ViewFileHeader&);
  };
  const Case cases[] = {
      {"header_bytes", [](ViewFileHeader& h) { h.header_bytes = sizeof(ViewFileHeader) + 8; }},
      {"file_bytes small", [](ViewFileHeader& h) { h.file_bytes = sizeof(ViewImage) - 264; }},
      {"file_bytes large", [](ViewFileHeader& h) { h.file_bytes = sizeof(ViewImage) + 264; }},
      {"server_capacity", [](ViewFileHeader& h) { h.server_capacity = 32; }},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    image->header = GoodHeader(2);
    c.mutate(image->header);
    WriteImage(path_, *image, sizeof(ViewImage));
    auto reader = ViewReader::Open(path_);
    ASSERT_FALSE(reader.ok());
    EXPECT_EQ(reader.status().code(), Status::Code::kInvalidArgument);
    const std::string message = reader.status().message();
    EXPECT_NE(message.find(path_), std::string::npos) << message;
    EXPECT_NE(message.find("sizes"), std::string::npos) << message;
  }
}

TEST_F(ViewFileTest, ReaderRefusesADirectory) {
  auto reader = ViewReader::Open(dir_);
  ASSERT_FALSE(reader.ok());
  EXPECT_NE(reader.status().message().find(dir_), std::string::npos) << reader.status().message();
}

TEST_F(ViewFileTest, ReaderReadsAHandCraftedFile) {
  // The layout contract, written byte by byte without ViewWriter.
  auto image = std::make_unique<ViewImage>();
  image->header = GoodHeader(6);
  image->view = MakeView(77);
  WriteImage(path_, *image, sizeof(ViewImage));
  auto reader = OpenReader();
  ASSERT_NE(reader, nullptr);
  auto view = reader->Current();
  ASSERT_TRUE(view.ok()) << view.status().ToString();
  EXPECT_TRUE(SameBytes(**view, image->view));
  EXPECT_EQ((*view)->generation, 77u);
  EXPECT_EQ(reader->path(), path_);
}

// ---------------------------------------------------------------------------------
// Reader behaviour on a live file

TEST_F(ViewFileTest, CurrentReturnsTheSameCopyUntilTheSequenceChanges) {
  auto writer = OpenWriter();
  ASSERT_NE(writer, nullptr);
  ASSERT_TRUE(writer->Publish(MakeView(10)).ok());
  auto reader = OpenReader();
  ASSERT_NE(reader, nullptr);

  auto first = reader->Current();
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  const ClusterView* copy = *first;
  EXPECT_TRUE(SameBytes(*copy, MakeView(10)));
  for (int i = 0; i < 5; ++i) {
    auto again = reader->Current();
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(*again, copy);
  }

  // Change the view's bytes behind the seqlock's back: with the sequence unchanged
  // the reader does not copy again, so it still returns the old view.
  const uint64_t sequence = ReadSequence(path_);
  const uint64_t sneaky_generation = 999;
  PatchFile(path_, kViewOffset + offsetof(ClusterView, generation), &sneaky_generation,
            sizeof(sneaky_generation));
  auto unchanged = reader->Current();
  ASSERT_TRUE(unchanged.ok());
  EXPECT_EQ(*unchanged, copy);
  EXPECT_EQ((*unchanged)->generation, 10u);

  // A new (even) sequence makes it copy again.
  WriteSequence(path_, sequence + 2);
  auto recopied = reader->Current();
  ASSERT_TRUE(recopied.ok()) << recopied.status().ToString();
  EXPECT_EQ((*recopied)->generation, 999u);

  // And a real publish is picked up, whole.
  ASSERT_TRUE(writer->Publish(MakeView(11)).ok());
  auto published = reader->Current();
  ASSERT_TRUE(published.ok()) << published.status().ToString();
  EXPECT_TRUE(SameBytes(**published, MakeView(11)));
  EXPECT_EQ(reader->Current().value(), published.value());
}

TEST_F(ViewFileTest, FirstReadOfANewFileIsTheEmptyView) {
  auto writer = OpenWriter();
  ASSERT_NE(writer, nullptr);
  auto reader = OpenReader();
  ASSERT_NE(reader, nullptr);
  auto view = reader->Current();
  ASSERT_TRUE(view.ok()) << view.status().ToString();
  const ClusterView empty;
  EXPECT_TRUE(SameBytes(**view, empty));
  EXPECT_TRUE((*view)->ServersIn(ServerState::kAbsent).bits() == ~uint64_t{0});
}

TEST_F(ViewFileTest, ReaderRefusesACorruptPublishedView) {
  auto writer = OpenWriter();
  ASSERT_NE(writer, nullptr);
  ClusterView good = MakeView(20);
  good.server(5).state = static_cast<uint8_t>(ServerState::kUp);
  good.server(5).index = 5;
  ASSERT_TRUE(good.server(5).SetId("app-5").ok());
  ASSERT_TRUE(writer->Publish(good).ok());

  const std::size_t slot5 = kViewOffset + offsetof(ClusterView, servers) + 5 * sizeof(ViewServer);
  struct Corruption {
    const char* name;
    std::size_t offset;
    std::string bytes;
    const char* expected;  // in the message
  };
  const Corruption corruptions[] = {
      {"unknown state", slot5 + offsetof(ViewServer, state), std::string(1, '\x09'),
       "slot 5: unknown state 9"},
      {"index", slot5 + offsetof(ViewServer, index), std::string(1, '\x06'),
       "slot 5: holds index 6"},
      {"empty id", slot5 + offsetof(ViewServer, id), std::string(1, '\0'),
       "slot 5: present server without an id"},
      {"unterminated id", slot5 + offsetof(ViewServer, id), std::string(kViewIdCapacity, 'x'),
       "slot 5: unterminated string"},
      {"unterminated cluster name", kViewOffset + offsetof(ClusterView, cluster_name),
       std::string(kViewClusterNameCapacity, 'c'), "cluster name unterminated"},
      {"publisher index", kViewOffset + offsetof(ClusterView, publisher_index),
       std::string("\x40\0\0\0", 4), "publisher index out of range"},
  };
  uint64_t generation = 20;
  for (const Corruption& c : corruptions) {
    SCOPED_TRACE(c.name);
    auto reader = OpenReader();
    ASSERT_NE(reader, nullptr);
    auto before = reader->Current();
    ASSERT_TRUE(before.ok()) << before.status().ToString();
    ASSERT_EQ((*before)->generation, generation);

    PatchFile(path_, c.offset, c.bytes.data(), c.bytes.size());
    WriteSequence(path_, ReadSequence(path_) + 2);
    for (int i = 0; i < 2; ++i) {  // refused every time, not just once
      auto corrupt = reader->Current();
      ASSERT_FALSE(corrupt.ok());
      EXPECT_EQ(corrupt.status().code(), Status::Code::kInvalidArgument);
      const std::string message = corrupt.status().message();
      EXPECT_NE(message.find(path_), std::string::npos) << message;
      EXPECT_NE(message.find(c.expected), std::string::npos) << message;
    }
    // A fresh reader refuses it too.
    auto fresh = OpenReader();
    ASSERT_NE(fresh, nullptr);
    EXPECT_FALSE(fresh->Current().ok());

    // The next good publish heals every reader.
    ++generation;
    good.generation = generation;
    ASSERT_TRUE(writer->Publish(good).ok());
    auto healed = reader->Current();
    ASSERT_TRUE(healed.ok()) << healed.status().ToString();
    EXPECT_TRUE(SameBytes(**healed, good));
    EXPECT_EQ(GenerationOf(*fresh), generation);
  }
}

TEST_F(ViewFileTest, ReaderKeepsItsCopyWhileAWriterIsStuckMidUpdate) {
  {
    auto writer = OpenWriter();
    ASSERT_NE(writer, nullptr);
    ASSERT_TRUE(writer->Publish(MakeView(30)).ok());
  }
  auto reader = OpenReader();
  ASSERT_NE(reader, nullptr);
  auto good = reader->Current();
  ASSERT_TRUE(good.ok());
  const ClusterView* copy = *good;

  // A writer died inside an update: the sequence stays odd and the view is half new.
  const uint64_t sequence = ReadSequence(path_);
  ASSERT_EQ(sequence % 2, 0u);
  WriteSequence(path_, sequence + 1);
  const uint64_t half = 31;
  PatchFile(path_, kViewOffset + offsetof(ClusterView, generation), &half, sizeof(half));

  const auto started = steady_clock::now();
  auto stuck = reader->Current();
  ASSERT_TRUE(stuck.ok()) << stuck.status().ToString();
  EXPECT_EQ(*stuck, copy);  // the previous good view
  EXPECT_EQ((*stuck)->generation, 30u);
  EXPECT_LT(steady_clock::now() - started, std::chrono::seconds(1));

  // A reader with no good copy yet has nothing to return.
  auto fresh = OpenReader();
  ASSERT_NE(fresh, nullptr);
  auto nothing = fresh->Current();
  ASSERT_FALSE(nothing.ok());
  EXPECT_EQ(nothing.status().code(), Status::Code::kIoError);
  EXPECT_NE(nothing.status().message().find(path_), std::string::npos)
      << nothing.status().message();

  // The restarted sidecar reopens the file in place and publishes over the odd sequence.
  auto writer = OpenWriter();
  ASSERT_NE(writer, nullptr);
  ASSERT_TRUE(writer->Publish(MakeView(32)).ok());
  EXPECT_EQ(ReadSequence(path_) % 2, 0u);
  EXPECT_GT(ReadSequence(path_), sequence + 1);
  auto healed = reader->Current();
  ASSERT_TRUE(healed.ok()) << healed.status().ToString();
  EXPECT_TRUE(SameBytes(**healed, MakeView(32)));
  EXPECT_EQ(GenerationOf(*fresh), 32u);
}

TEST_F(ViewFileTest, FirstCopyWaitsOutAWriterPausedMidUpdateButNeverLong) {
  {
    auto writer = OpenWriter();
    ASSERT_NE(writer, nullptr);
    ASSERT_TRUE(writer->Publish(MakeView(40)).ok());
  }
  // A writer inside an update, paused (preempted on a busy machine): the sequence
  // is odd. It finishes 300 us later, well within a first reader's patience.
  const uint64_t sequence = ReadSequence(path_);
  WriteSequence(path_, sequence + 1);
  auto reader = OpenReader();
  ASSERT_NE(reader, nullptr);
  std::atomic<bool> writer_running{false};
  std::thread writer_resumes([&] {
    writer_running = true;
    std::this_thread::sleep_for(std::chrono::microseconds(300));
    WriteSequence(path_, sequence + 2);
  });
  while (!writer_running) std::this_thread::yield();
  auto copy = reader->Current();
  writer_resumes.join();
  ASSERT_TRUE(copy.ok()) << copy.status().ToString();
  EXPECT_EQ((*copy)->generation, 40u);

  // A writer that stays inside its update: a first reader gives up after its
  // patience, not much later.
  WriteSequence(path_, sequence + 3);
  auto fresh = OpenReader();
  ASSERT_NE(fresh, nullptr);
  const auto started = steady_clock::now();
  auto nothing = fresh->Current();
  const auto waited = steady_clock::now() - started;
  ASSERT_FALSE(nothing.ok());
  EXPECT_GE(waited, ViewReader::kFirstCopyPatience);
  EXPECT_LT(waited, std::chrono::milliseconds(500));
}

// ---------------------------------------------------------------------------------
// Writer

TEST_F(ViewFileTest, WriterCreatesAFileOfTheRightSizeAndMode) {
  // A restrictive umask (systemd services often run with 027) must not keep nginx
  // workers, running as another user, from reading the view.
  const mode_t old_umask = umask(077);
  auto writer = ViewWriter::Open(path_);
  umask(old_umask);
  ASSERT_TRUE(writer.ok()) << writer.status().ToString();
  EXPECT_EQ((*writer)->path(), path_);

  struct stat info {};
  ASSERT_EQ(stat(path_.c_str(), &info), 0);
  EXPECT_TRUE(S_ISREG(info.st_mode));
  EXPECT_EQ(info.st_mode & 07777, 0644u);
  EXPECT_EQ(info.st_size, static_cast<off_t>(sizeof(ViewImage)));
  // No temporary file is left behind.
  EXPECT_EQ(DirectoryEntries(dir_),
            (std::vector<std::string>{"cluster.view", "cluster.view.lock"}));

  ViewFileHeader header;
  const int fd = open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(pread(fd, &header, sizeof(header), 0), static_cast<ssize_t>(sizeof(header)));
  close(fd);
  EXPECT_EQ(header.magic, kViewMagic);
  EXPECT_EQ(std::memcmp(&header.magic, "CBVW", 4), 0);
  EXPECT_EQ(header.format_version, kViewFormatVersion);
  EXPECT_EQ(header.header_bytes, sizeof(ViewFileHeader));
  EXPECT_EQ(header.file_bytes, sizeof(ViewImage));
  EXPECT_EQ(header.server_capacity, static_cast<uint32_t>(kMaxServers));
  EXPECT_EQ(header.sequence % 2, 0u);
  EXPECT_GT(header.sequence, 0u);

  // Every publish leaves the sequence even and larger.
  uint64_t previous = header.sequence;
  for (uint64_t g = 1; g <= 3; ++g) {
    ASSERT_TRUE((*writer)->Publish(MakeView(g)).ok());
    const uint64_t sequence = ReadSequence(path_);
    EXPECT_EQ(sequence % 2, 0u);
    EXPECT_GT(sequence, previous);
    previous = sequence;
  }
  EXPECT_EQ(InodeOf(path_), info.st_ino);  // published in place
}

TEST_F(ViewFileTest, WriterFailsInAMissingDirectory) {
  const std::string path = dir_ + "/no-such-dir/cluster.view";
  auto writer = ViewWriter::Open(path);
  ASSERT_FALSE(writer.ok());
  EXPECT_EQ(writer.status().code(), Status::Code::kIoError);
  EXPECT_NE(writer.status().message().find(path), std::string::npos) << writer.status().message();
}

TEST_F(ViewFileTest, SecondWriterIsRefusedAndAReopenUpdatesInPlace) {
  auto first = OpenWriter();
  ASSERT_NE(first, nullptr);
  ASSERT_TRUE(first->Publish(MakeView(40)).ok());
  const ino_t inode = InodeOf(path_);
  auto reader = OpenReader();
  ASSERT_NE(reader, nullptr);
  ASSERT_EQ(GenerationOf(*reader), 40u);

  auto second = ViewWriter::Open(path_);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), Status::Code::kIoError);
  EXPECT_NE(second.status().message().find("another process"), std::string::npos)
      << second.status().message();
  EXPECT_NE(second.status().message().find(path_), std::string::npos) << second.status().message();
  // The refused writer touched nothing: same file, the first writer still publishes.
  EXPECT_EQ(InodeOf(path_), inode);
  EXPECT_EQ(DirectoryEntries(dir_),
            (std::vector<std::string>{"cluster.view", "cluster.view.lock"}));
  ASSERT_TRUE(first->Publish(MakeView(41)).ok());
  EXPECT_EQ(GenerationOf(*reader), 41u);

  first.reset();  // the sidecar stops; the lock goes with it
  EXPECT_EQ(GenerationOf(*reader), 41u);
  EXPECT_FALSE(reader->MappingIsStale());

  auto third = OpenWriter();
  ASSERT_NE(third, nullptr);
  EXPECT_EQ(InodeOf(path_), inode);  // updated in place, not replaced
  EXPECT_FALSE(reader->MappingIsStale());
  EXPECT_EQ(GenerationOf(*reader), 41u);  // reopening keeps the published view
  ASSERT_TRUE(third->Publish(MakeView(42)).ok());
  auto view = reader->Current();
  ASSERT_TRUE(view.ok()) << view.status().ToString();
  EXPECT_TRUE(SameBytes(**view, MakeView(42)));
  EXPECT_FALSE(reader->MappingIsStale());

  // The new writer holds the lock in turn.
  auto fourth = ViewWriter::Open(path_);
  ASSERT_FALSE(fourth.ok());
  EXPECT_NE(fourth.status().message().find("another process"), std::string::npos)
      << fourth.status().message();
}

TEST_F(ViewFileTest, ReaderTellsWhetherThePublisherIsRunning) {
  auto writer = OpenWriter();
  ASSERT_NE(writer, nullptr);
  ASSERT_TRUE(writer->Publish(MakeView(7)).ok());
  auto reader = OpenReader();
  ASSERT_NE(reader, nullptr);
  EXPECT_TRUE(reader->PublisherIsRunning());
  // Testing the lock never takes it: a new writer can start after any number of tests.
  EXPECT_TRUE(reader->PublisherIsRunning());

  writer.reset();  // the sidecar stops or dies; the kernel drops its lock
  EXPECT_FALSE(reader->PublisherIsRunning());
  EXPECT_EQ(GenerationOf(*reader), 7u);  // the last view stays readable

  auto restarted = OpenWriter();
  ASSERT_NE(restarted, nullptr);
  EXPECT_TRUE(reader->PublisherIsRunning());

  restarted.reset();
  ASSERT_EQ(unlink((path_ + ".lock").c_str()), 0);
  EXPECT_FALSE(reader->PublisherIsRunning());
}

TEST_F(ViewFileTest, WriterReplacesAFileOfAnotherFormat) {
  auto image = std::make_unique<ViewImage>();
  image->header = GoodHeader(2);
  image->view = MakeView(50);
  const std::string text = "not a view\n";
  std::string longer(reinterpret_cast<const char*>(image.get()), sizeof(ViewImage));
  longer.append(64, '\0');
  struct Case {
    const char* name;
    std::function<void(ViewImage&)> mutate;  // applied to a copy of the good image
    std::size_t size;                        // bytes of the (mutated) image to write
    const std::string* raw;                  // or these bytes instead
  };
  const Case cases[] = {
      {"bad magic", [](ViewImage& i) { i.header.magic = 0; }, sizeof(ViewImage), nullptr},
      {"version 1", [](ViewImage& i) { i.header.format_version = 1; }, sizeof(ViewImage), nullptr},
      {"version 3", [](ViewImage& i) { i.header.format_version = 3; }, sizeof(ViewImage), nullptr},
      {"header sizes", [](ViewImage& i) { i.header.server_capacity = 128; }, sizeof(ViewImage),
       nullptr},
      {"truncated", [](ViewImage&) {}, sizeof(ViewImage) - 8, nullptr},
      {"empty", [](ViewImage&) {}, 0, nullptr},
      {"text", [](ViewImage&) {}, 0, &text},
      {"longer than a view", [](ViewImage&) {}, 0, &longer},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    // A reader maps a good file...
    WriteImage(path_, *image, sizeof(ViewImage));
    auto reader = OpenReader();
    ASSERT_NE(reader, nullptr);
    ASSERT_EQ(GenerationOf(*reader), 50u);
    const ino_t old_inode = InodeOf(path_);
    EXPECT_FALSE(reader->MappingIsStale());

    // ...which then turns into something else. A header is patched in place
    // (the reader's mapping stays valid); other shapes are new files.
    if (c.raw != nullptr) {
      ASSERT_EQ(unlink(path_.c_str()), 0);
      WriteFileBytes(path_, c.raw->data(), c.raw->size());
    } else if (c.size == sizeof(ViewImage)) {
      auto mutated = std::make_unique<ViewImage>(*image);
      c.mutate(*mutated);
      PatchFile(path_, 0, &mutated->header, sizeof(ViewFileHeader));
    } else {
      ASSERT_EQ(unlink(path_.c_str()), 0);
      WriteImage(path_, *image, c.size);
    }
    const ino_t bad_inode = InodeOf(path_);

    auto writer = OpenWriter();
    ASSERT_NE(writer, nullptr);
    EXPECT_NE(InodeOf(path_), bad_inode);  // replaced, never reformatted in place
    struct stat info {};
    ASSERT_EQ(stat(path_.c_str(), &info), 0);
    EXPECT_EQ(info.st_size, static_cast<off_t>(sizeof(ViewImage)));
    EXPECT_EQ(DirectoryEntries(dir_),
              (std::vector<std::string>{"cluster.view", "cluster.view.lock"}));
    EXPECT_TRUE(reader->MappingIsStale());
    EXPECT_NE(InodeOf(path_), old_inode);

    // The old reader still answers from its old mapping; a new one sees the new file.
    EXPECT_EQ(GenerationOf(*reader), 50u);
    auto renewed = OpenReader();
    ASSERT_NE(renewed, nullptr);
    EXPECT_FALSE(renewed->MappingIsStale());
    EXPECT_EQ(GenerationOf(*renewed), 0u);  // the empty view
    ASSERT_TRUE(writer->Publish(MakeView(51)).ok());
    EXPECT_EQ(GenerationOf(*renewed), 51u);
    EXPECT_EQ(GenerationOf(*reader), 50u);
    writer.reset();
    ASSERT_EQ(unlink(path_.c_str()), 0);
  }
}

TEST_F(ViewFileTest, RemovingTheFileMakesTheMappingStale) {
  auto writer = OpenWriter();
  ASSERT_NE(writer, nullptr);
  ASSERT_TRUE(writer->Publish(MakeView(60)).ok());
  auto reader = OpenReader();
  ASSERT_NE(reader, nullptr);
  EXPECT_FALSE(reader->MappingIsStale());
  ASSERT_EQ(unlink(path_.c_str()), 0);
  EXPECT_TRUE(reader->MappingIsStale());
  // The mapping itself survives the unlink.
  EXPECT_EQ(GenerationOf(*reader), 60u);
  ASSERT_TRUE(writer->Publish(MakeView(61)).ok());  // into the unlinked inode
  EXPECT_EQ(GenerationOf(*reader), 61u);
  EXPECT_TRUE(reader->MappingIsStale());
}

TEST_F(ViewFileTest, PublishRejectsAnInvalidViewAndKeepsThePreviousOne) {
  auto writer = OpenWriter();
  ASSERT_NE(writer, nullptr);
  ASSERT_TRUE(writer->Publish(MakeView(70)).ok());
  auto reader = OpenReader();
  ASSERT_NE(reader, nullptr);
  auto before = reader->Current();
  ASSERT_TRUE(before.ok());
  const ClusterView* copy = *before;
  const uint64_t sequence = ReadSequence(path_);

  struct Case {
    const char* name;
    void (*mutate)(ClusterView&);
    const char* expected;
  };
  const Case cases[] = {
      {"present server with empty id",
       [](ClusterView& v) {
         v.server(3) = ViewServer();
         v.server(3).state = static_cast<uint8_t>(ServerState::kUp);
         v.server(3).index = 3;
       },
       "slot 3: present server without an id"},
      {"unknown state", [](ClusterView& v) { v.server(7).state = 4; }, "slot 7: unknown state 4"},
      {"index mismatch",
       [](ClusterView& v) {
         v.server(9).state = static_cast<uint8_t>(ServerState::kDraining);
         v.server(9).index = 8;
         (void)v.server(9).SetId("x");
       },
       "slot 9: holds index 8"},
      {"unterminated address",
       [](ClusterView& v) { std::memset(v.server(0).http_address, 'a', kViewAddressCapacity); },
       "slot 0: unterminated string"},
      {"unterminated cluster name",
       [](ClusterView& v) { std::memset(v.cluster_name, 'n', kViewClusterNameCapacity); },
       "cluster name unterminated"},
      {"publisher index", [](ClusterView& v) { v.publisher_index = -2; },
       "publisher index out of range"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    ClusterView bad = MakeView(71);
    c.mutate(bad);
    const Status published = writer->Publish(bad);
    ASSERT_FALSE(published.ok());
    EXPECT_EQ(published.code(), Status::Code::kInvalidArgument);
    EXPECT_NE(published.message().find(c.expected), std::string::npos) << published.message();
    EXPECT_EQ(ReadSequence(path_), sequence);  // the file was not touched
    auto after = reader->Current();
    ASSERT_TRUE(after.ok()) << after.status().ToString();
    EXPECT_EQ(*after, copy);
    EXPECT_EQ((*after)->generation, 70u);
    auto fresh = OpenReader();
    ASSERT_NE(fresh, nullptr);
    EXPECT_EQ(GenerationOf(*fresh), 70u);
  }
  ASSERT_TRUE(writer->Publish(MakeView(72)).ok());
  EXPECT_EQ(GenerationOf(*reader), 72u);
}

}  // namespace
}  // namespace cb

namespace cb {
namespace {

TEST_F(ViewFileTest, WritersRacingOnAMissingFileNeverBothWin) {
  for (int round = 0; round < 20; ++round) {
    std::remove(path_.c_str());
    std::array<Result<std::unique_ptr<ViewWriter>>, 2> results = {Status::IoError("not run"),
                                                                  Status::IoError("not run")};
    std::thread other([&] { results[1] = ViewWriter::Open(path_); });
    results[0] = ViewWriter::Open(path_);
    other.join();
    EXPECT_EQ(results[0].ok() + results[1].ok(), 1) << "round " << round;
    for (auto& result : results) {
      if (!result.ok()) {
        EXPECT_NE(result.status().message().find("another process"), std::string::npos)
            << result.status().message();
      }
    }
  }
}

TEST_F(ViewFileTest, ReaderRefusesAFifoWithoutBlocking) {
  ASSERT_EQ(mkfifo(path_.c_str(), 0644), 0);
  auto reader = ViewReader::Open(path_);  // would hang in open(2) without O_NONBLOCK
  ASSERT_FALSE(reader.ok());
  EXPECT_NE(reader.status().message().find("not a regular file"), std::string::npos)
      << reader.status().message();
}

TEST_F(ViewFileTest, TruncatingTheFileMakesTheMappingStale) {
  auto writer = ViewWriter::Open(path_);
  ASSERT_TRUE(writer.ok()) << writer.status().ToString();
  auto reader = ViewReader::Open(path_);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  EXPECT_FALSE((*reader)->MappingIsStale());
  ASSERT_EQ(truncate(path_.c_str(), 100), 0);
  EXPECT_TRUE((*reader)->MappingIsStale());
}

TEST_F(ViewFileTest, SnapshotIdsAreUniqueAcrossReadersAndChangeWithEachNewView) {
  auto writer = ViewWriter::Open(path_);
  ASSERT_TRUE(writer.ok()) << writer.status().ToString();
  ASSERT_TRUE((*writer)->Publish(MakeView(1)).ok());
  auto first = ViewReader::Open(path_);
  auto second = ViewReader::Open(path_);
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ((*first)->snapshot_id(), 0u);
  ASSERT_TRUE((*first)->Current().ok());
  ASSERT_TRUE((*second)->Current().ok());
  const uint64_t first_id = (*first)->snapshot_id();
  EXPECT_NE(first_id, 0u);
  EXPECT_NE((*second)->snapshot_id(), first_id);
  ASSERT_TRUE((*first)->Current().ok());
  EXPECT_EQ((*first)->snapshot_id(), first_id);  // unchanged view, same copy
  ASSERT_TRUE((*writer)->Publish(MakeView(2)).ok());
  ASSERT_TRUE((*first)->Current().ok());
  EXPECT_NE((*first)->snapshot_id(), first_id);
}

}  // namespace
}  // namespace cb
