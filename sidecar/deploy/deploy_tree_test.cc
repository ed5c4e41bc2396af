#include "sidecar/deploy/deploy_tree.h"

#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "sidecar/testing/temp_dir.h"

namespace cb::deploy {
namespace {

using cb::testing_support::TempDir;

// An entry to write into a crafted archive, as an attacker would.
struct Item {
  std::string name;
  unsigned type = AE_IFREG;
  unsigned perm = 0644;
  std::string data;      // a file's content
  std::string link;      // a symlink's target
  std::string hardlink;  // the earlier entry this one is a hard link to
};

Item File(std::string name, std::string data = "x", unsigned perm = 0644) {
  Item item;
  item.name = std::move(name);
  item.perm = perm;
  item.data = std::move(data);
  return item;
}
Item Dir(std::string name, unsigned perm = 0755) {
  Item item;
  item.name = std::move(name);
  item.type = AE_IFDIR;
  item.perm = perm;
  return item;
}
Item Link(std::string name, std::string target) {
  Item item;
  item.name = std::move(name);
  item.type = AE_IFLNK;
  item.perm = 0777;
  item.link = std::move(target);
  return item;
}
Item Of(std::string name, unsigned type) {
  Item item;
  item.name = std::move(name);
  item.type = type;
  return item;
}

enum class Format { kTar, kTarGz, kTarBz2, kTarXz, kZip };

la_ssize_t Append(struct archive*, void* client, const void* data, size_t size) {
  static_cast<std::string*>(client)->append(static_cast<const char*>(data), size);
  return static_cast<la_ssize_t>(size);
}

// The archive of `items` as libarchive writes it (names and modes untouched).
std::string Make(Format format, const std::vector<Item>& items) {
  std::string out;
  struct archive* a = archive_write_new();
  switch (format) {
    case Format::kTar:
      archive_write_set_format_gnutar(a);
      break;
    case Format::kTarGz:
      archive_write_add_filter_gzip(a);
      archive_write_set_format_gnutar(a);
      break;
    case Format::kTarBz2:
      archive_write_add_filter_bzip2(a);
      archive_write_set_format_gnutar(a);
      break;
    case Format::kTarXz:
      archive_write_add_filter_xz(a);
      archive_write_set_format_gnutar(a);
      break;
    case Format::kZip:
      archive_write_set_format_zip(a);
      break;
  }
  archive_write_set_bytes_in_last_block(a, 1);
  EXPECT_EQ(archive_write_open2(a, &out, nullptr, Append, nullptr, nullptr), ARCHIVE_OK);
  for (const Item& item : items) {
    struct archive_entry* entry = archive_entry_new();
    archive_entry_set_pathname(entry, item.name.c_str());
    archive_entry_set_filetype(entry, item.type);
    archive_entry_set_perm(entry, item.perm);
    if (item.type == AE_IFLNK) archive_entry_set_symlink(entry, item.link.c_str());
    if (item.type == AE_IFCHR || item.type == AE_IFBLK) archive_entry_set_rdev(entry, 0x0103);
    if (!item.hardlink.empty()) archive_entry_set_hardlink(entry, item.hardlink.c_str());
    const bool has_data = item.type == AE_IFREG && item.hardlink.empty();
    archive_entry_set_size(entry, has_data ? static_cast<la_int64_t>(item.data.size()) : 0);
    EXPECT_GE(archive_write_header(a, entry), ARCHIVE_WARN)
        << item.name << ": " << archive_error_string(a);
    if (has_data && !item.data.empty()) {
      EXPECT_EQ(archive_write_data(a, item.data.data(), item.data.size()),
                static_cast<la_ssize_t>(item.data.size()));
    }
    archive_entry_free(entry);
  }
  EXPECT_EQ(archive_write_close(a), ARCHIVE_OK) << archive_error_string(a);
  archive_write_free(a);
  return out;
}

std::string Tar(const std::vector<Item>& items) { return Make(Format::kTar, items); }
std::string Zip(const std::vector<Item>& items) { return Make(Format::kZip, items); }

// "path kind bytes" lines, to compare trees at a glance.
std::string Describe(const DeployTree& tree) {
  std::string out;
  for (const TreeEntry& entry : tree.entries) {
    const char* kind = entry.kind == EntryKind::kFile         ? "file"
                       : entry.kind == EntryKind::kExecutable ? "exec"
                                                              : "link";
    out += entry.path + " " + kind + " " + entry.bytes + "\n";
  }
  return out;
}

::testing::AssertionResult Refused(const Result<DeployTree>& tree, Status::Code code,
                                   const std::string& message) {
  if (tree.ok()) return ::testing::AssertionFailure() << "accepted:\n" << Describe(*tree);
  if (tree.status().code() == code && tree.status().message() == message) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure()
         << "refused with \"" << tree.status().ToString() << "\", not \"" << message << "\"";
}

::testing::AssertionResult Invalid(const Result<DeployTree>& tree, const std::string& message) {
  return Refused(tree, Status::Code::kInvalidArgument, message);
}

const TreeLimits kLimits;

// ---------------------------------------------------------------------------
// Accepted archives

TEST(ReadArchiveTest, ReadsFilesExecutablesAndSymlinksSortedByPath) {
  for (Format format :
       {Format::kTar, Format::kTarGz, Format::kTarBz2, Format::kTarXz, Format::kZip}) {
    const std::string archive = Make(format, {
                                                 Dir("bin/"),
                                                 File("bin/run", "#!/bin/sh\n", 0755),
                                                 File("index.html", "<html>", 0644),
                                                 File("bin/group-only", "g", 0610),
                                                 Link("home.html", "index.html"),
                                                 Link("bin/up", "../index.html"),
                                                 File("empty", ""),
                                             });
    const Result<DeployTree> tree = ReadArchive(archive, kLimits);
    ASSERT_TRUE(tree.ok()) << static_cast<int>(format) << ": " << tree.status().ToString();
    EXPECT_EQ(Describe(*tree),
              "bin/group-only exec g\n"
              "bin/run exec #!/bin/sh\n\n"
              "bin/up link ../index.html\n"
              "empty file \n"
              "home.html link index.html\n"
              "index.html file <html>\n")
        << static_cast<int>(format);
    EXPECT_EQ(tree->total_bytes, 1 + 10 + 13 + 0 + 10 + 6);
  }
}

TEST(ReadArchiveTest, DropsLeadingDotSlashAndKeepsATopDirectory) {
  const std::string archive = Tar({
      Dir("./"),
      Dir("./app/"),
      File("./app/a", "1"),
      File("././app/b", "2"),
      Dir("./app/static"),
      File("./app/static/c.css", "3"),
  });
  const Result<DeployTree> tree = ReadArchive(archive, kLimits);
  ASSERT_TRUE(tree.ok()) << tree.status().ToString();
  EXPECT_EQ(Describe(*tree), "app/a file 1\napp/b file 2\napp/static/c.css file 3\n");
}

TEST(ReadArchiveTest, KeepsUtf8NamesAndBackslashesInTarNames) {
  const Result<DeployTree> tree =
      ReadArchive(Tar({File("caf\xC3\xA9.txt"), File("a\\b")}), kLimits);
  ASSERT_TRUE(tree.ok()) << tree.status().ToString();
  EXPECT_EQ(Describe(*tree), "a\\b file x\ncaf\xC3\xA9.txt file x\n");
}

TEST(ReadArchiveTest, AcceptsSymlinksThatStayInsideThroughOtherSymlinks) {
  const Result<DeployTree> tree = ReadArchive(Tar({
                                                  Link("d/up", ".."),
                                                  Link("d/self", "."),
                                                  Link("x", "d/up/d/self/../d"),
                                                  Link("dangling", "nowhere/at/all"),
                                              }),
                                              kLimits);
  ASSERT_TRUE(tree.ok()) << tree.status().ToString();
  EXPECT_EQ(tree->entries.size(), 4u);
}

TEST(ReadArchiveTest, ReadsATarballMadeByGnuTar) {
  TempDir dir("deploy_tree");
  const std::string app = dir.path() + "/app";
  ASSERT_EQ(::mkdir(app.c_str(), 0755), 0);
  ASSERT_EQ(::mkdir((app + "/lib").c_str(), 0755), 0);
  std::ofstream(app + "/index.html") << "hello";
  std::ofstream(app + "/lib/run.sh") << "#!/bin/sh\n";
  ASSERT_EQ(::chmod((app + "/lib/run.sh").c_str(), 0755), 0);
  ASSERT_EQ(::symlink("lib/run.sh", (app + "/start").c_str()), 0);
  const std::string archive = dir.path() + "/app.tar.gz";
  ASSERT_EQ(std::system(("tar czf '" + archive + "' -C '" + app + "' .").c_str()), 0);

  std::ifstream in(archive, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const Result<DeployTree> tree = ReadArchive(bytes, kLimits);
  ASSERT_TRUE(tree.ok()) << tree.status().ToString();
  EXPECT_EQ(Describe(*tree),
            "index.html file hello\n"
            "lib/run.sh exec #!/bin/sh\n\n"
            "start link lib/run.sh\n");
}

// ---------------------------------------------------------------------------
// Refused archives: each names its first bad entry

TEST(ReadArchiveTest, RefusesAbsoluteDotDotDotAndEmptyComponents) {
  EXPECT_TRUE(
      Invalid(ReadArchive(Tar({File("/etc/passwd")}), kLimits), "/etc/passwd: absolute path"));
  EXPECT_TRUE(
      Invalid(ReadArchive(Tar({File("../etc/passwd")}), kLimits), "../etc/passwd: '..' component"));
  EXPECT_TRUE(
      Invalid(ReadArchive(Tar({File("./a/../../x")}), kLimits), "./a/../../x: '..' component"));
  EXPECT_TRUE(Invalid(ReadArchive(Tar({File("a/..")}), kLimits), "a/..: '..' component"));
  EXPECT_TRUE(Invalid(ReadArchive(Tar({Dir("a/../")}), kLimits), "a/../: '..' component"));
  EXPECT_TRUE(Invalid(ReadArchive(Tar({File("a/./b")}), kLimits), "a/./b: '.' component"));
  EXPECT_TRUE(Invalid(ReadArchive(Tar({File("a//b")}), kLimits), "a//b: empty component"));
  EXPECT_TRUE(
      Invalid(ReadArchive(Zip({File("/etc/passwd")}), kLimits), "/etc/passwd: absolute path"));
  EXPECT_TRUE(Invalid(ReadArchive(Zip({File("../x")}), kLimits), "../x: '..' component"));
}

TEST(ReadArchiveTest, NamesTheFirstBadEntry) {
  EXPECT_TRUE(Invalid(ReadArchive(Tar({File("fine"), File("../one"), File("/two")}), kLimits),
                      "../one: '..' component"));
}

// Windows separators in a zip's names are refused as stored (libarchive's zip
// reader would turn them into '/' before the tree sees them).
TEST(ReadArchiveTest, RefusesZipNamesWithWindowsSeparatorsOrDriveLetters) {
  EXPECT_TRUE(Invalid(ReadArchive(Zip({File("ok"), File("dir\\file.txt")}), kLimits),
                      "dir\\file.txt: '\\' in a zip name (a Windows separator)"));
  EXPECT_TRUE(Invalid(ReadArchive(Zip({File("a\\..\\..\\x")}), kLimits),
                      "a\\..\\..\\x: '\\' in a zip name (a Windows separator)"));
  EXPECT_TRUE(Invalid(ReadArchive(Zip({File("\\windows\\x")}), kLimits),
                      "\\windows\\x: '\\' in a zip name (a Windows separator)"));
  EXPECT_TRUE(
      Invalid(ReadArchive(Zip({File("C:/x")}), kLimits), "C:/x: drive letter in a zip name"));
  EXPECT_TRUE(Invalid(ReadArchive(Zip({File("c:x")}), kLimits), "c:x: drive letter in a zip name"));
  EXPECT_TRUE(Invalid(ReadArchive(Zip({Link("s", "..\\..\\etc")}), kLimits),
                      "s: symlink '..\\..\\etc' points outside the tree"));
  EXPECT_TRUE(Invalid(ReadArchive(Zip({Link("s", "C:\\etc")}), kLimits),
                      "s: symlink to an absolute path 'C:\\etc'"));
}

TEST(ReadArchiveTest, RefusesNamesThatAreNotUtf8OrHoldControlCharacters) {
  EXPECT_TRUE(Invalid(ReadArchive(Tar({File("bad\xFFname")}), kLimits),
                      "bad\\xFFname: name is not valid UTF-8"));
  EXPECT_TRUE(Invalid(ReadArchive(Tar({File("over\xC0\xAFlong")}), kLimits),
                      "over\\xC0\\xAFlong: name is not valid UTF-8"));
  EXPECT_TRUE(
      Invalid(ReadArchive(Tar({File("a\nb")}), kLimits), "a\\x0Ab: control character in name"));
  EXPECT_TRUE(Invalid(ReadArchive(Tar({File("esc\x1B[31m")}), kLimits),
                      "esc\\x1B[31m: control character in name"));
  EXPECT_TRUE(Invalid(ReadArchive(Tar({File("c1\xC2\x9B")}), kLimits),
                      "c1\\xC2\\x9B: control character in name"));
  EXPECT_TRUE(Invalid(ReadArchive(Tar({Link("s", "\xFF")}), kLimits),
                      "s: symlink target is not valid UTF-8"));
}

TEST(ReadArchiveTest, RefusesSymlinksOutOfTheTree) {
  EXPECT_TRUE(Invalid(ReadArchive(Tar({Link("etc", "/etc")}), kLimits),
                      "etc: symlink to an absolute path '/etc'"));
  EXPECT_TRUE(Invalid(ReadArchive(Tar({Link("up", "..")}), kLimits),
                      "up: symlink '..' points outside the tree"));
  EXPECT_TRUE(Invalid(ReadArchive(Tar({Link("d/e/s", "../../../x")}), kLimits),
                      "d/e/s: symlink '../../../x' points outside the tree"));
  EXPECT_TRUE(Invalid(ReadArchive(Zip({Link("d/s", "x/../../..")}), kLimits),
                      "d/s: symlink 'x/../../..' points outside the tree"));
  EXPECT_TRUE(Invalid(ReadArchive(Tar({Link("s", "")}), kLimits), "s: empty symlink target"));
  // Each stays inside on its own; together they leave. The later one is named.
  EXPECT_TRUE(Invalid(ReadArchive(Tar({Link("x", "d/up/.."), Link("d/up", "..")}), kLimits),
                      "x: symlink 'd/up/..' points outside the tree through other symlinks"));
  EXPECT_TRUE(
      Invalid(ReadArchive(Tar({Link("a", "b"), Link("b", "a")}), kLimits), "a: symlink 'b' loops"));
}

TEST(ReadArchiveTest, RefusesDevicesFifosAndHardLinks) {
  EXPECT_TRUE(Invalid(ReadArchive(Tar({Of("tty", AE_IFCHR)}), kLimits), "tty: device file"));
  EXPECT_TRUE(Invalid(ReadArchive(Tar({Of("sda", AE_IFBLK)}), kLimits), "sda: device file"));
  EXPECT_TRUE(Invalid(ReadArchive(Tar({Of("pipe", AE_IFIFO)}), kLimits), "pipe: FIFO"));
  Item hard = File("b", "");
  hard.hardlink = "a";
  EXPECT_TRUE(Invalid(ReadArchive(Tar({File("a"), hard}), kLimits), "b: hard link"));
  // A hard link to a file outside the tree is refused as well: it is never looked up.
  hard.hardlink = "/etc/shadow";
  EXPECT_TRUE(Invalid(ReadArchive(Tar({hard}), kLimits), "b: hard link"));
}

TEST(ReadArchiveTest, RefusesASocketInAZip) {
  // libarchive writes no sockets: make a file's mode in the zip's central
  // directory (external attributes, mode << 16) that of a socket.
  std::string archive = Zip({File("sock", "", 0640)});
  const std::string file_mode("\x00\x00\xA0\x81", 4);  // 0100640, little-endian
  const size_t at = archive.rfind(file_mode);
  ASSERT_NE(at, std::string::npos);
  archive[at + 3] = '\xC1';  // 0140640
  EXPECT_TRUE(Invalid(ReadArchive(archive, kLimits), "sock: socket"));
}

TEST(ReadArchiveTest, RefusesSetuidSetgidAndStickyBits) {
  EXPECT_TRUE(Invalid(ReadArchive(Tar({File("run", "x", 04755)}), kLimits), "run: setuid bit"));
  EXPECT_TRUE(Invalid(ReadArchive(Tar({File("run", "x", 02755)}), kLimits), "run: setgid bit"));
  EXPECT_TRUE(Invalid(ReadArchive(Tar({Dir("tmp/", 01777)}), kLimits), "tmp/: sticky bit"));
  EXPECT_TRUE(Invalid(ReadArchive(Tar({Dir("shared/", 02775)}), kLimits), "shared/: setgid bit"));
  EXPECT_TRUE(Invalid(ReadArchive(Zip({File("run", "x", 04755)}), kLimits), "run: setuid bit"));
}

TEST(ReadArchiveTest, RefusesEntriesThroughEarlierSymlinksOrFiles) {
  EXPECT_TRUE(Invalid(ReadArchive(Tar({Link("lnk", "sub"), File("lnk/f")}), kLimits),
                      "lnk/f: under symlink 'lnk' of an earlier entry"));
  // The classic escape: a link out, then a file through it. The link alone is refused first.
  EXPECT_TRUE(Invalid(ReadArchive(Tar({Link("out", "../../etc"), File("out/cron")}), kLimits),
                      "out: symlink '../../etc' points outside the tree"));
  EXPECT_TRUE(Invalid(ReadArchive(Tar({File("f"), File("f/x")}), kLimits),
                      "f/x: under file 'f' of an earlier entry"));
  EXPECT_TRUE(Invalid(ReadArchive(Tar({Link("lnk", "sub"), Dir("lnk/")}), kLimits),
                      "lnk/: duplicate entry"));
  EXPECT_TRUE(Invalid(ReadArchive(Zip({File("f"), Dir("f/d/")}), kLimits),
                      "f/d/: under file 'f' of an earlier entry"));
}

TEST(ReadArchiveTest, RefusesDuplicates) {
  EXPECT_TRUE(
      Invalid(ReadArchive(Tar({File("a", "1"), File("a", "2")}), kLimits), "a: duplicate entry"));
  EXPECT_TRUE(Invalid(ReadArchive(Tar({File("a"), File("./a")}), kLimits), "./a: duplicate entry"));
  EXPECT_TRUE(
      Invalid(ReadArchive(Tar({File("a"), Link("a", "b")}), kLimits), "a: duplicate entry"));
  EXPECT_TRUE(Invalid(ReadArchive(Tar({File("d/x"), File("d")}), kLimits),
                      "d: duplicate entry (a directory of earlier entries)"));
  EXPECT_TRUE(Invalid(ReadArchive(Zip({File("a"), File("a")}), kLimits), "a: duplicate entry"));
  // A directory named twice is harmless.
  EXPECT_TRUE(ReadArchive(Tar({Dir("d/"), Dir("d/"), File("d/x")}), kLimits).ok());
}

TEST(ReadArchiveTest, RefusesGitsOwnDirectory) {
  EXPECT_TRUE(Invalid(ReadArchive(Tar({File(".git/hooks/post-checkout")}), kLimits),
                      ".git/hooks/post-checkout: '.git' component (reserved by Git)"));
  EXPECT_TRUE(Invalid(ReadArchive(Tar({File("sub/.GiT")}), kLimits),
                      "sub/.GiT: '.git' component (reserved by Git)"));
  EXPECT_TRUE(ReadArchive(Tar({File(".gitignore"), File("x.git")}), kLimits).ok());
}

TEST(ReadArchiveTest, RefusesOverlongNames) {
  const std::string long_part(256, 'a');
  EXPECT_TRUE(Invalid(ReadArchive(Tar({File("d/" + long_part)}), kLimits),
                      "d/" + long_part + ": component longer than 255 bytes"));
  EXPECT_TRUE(ReadArchive(Tar({File("d/" + long_part.substr(1))}), kLimits).ok());
}

// ---------------------------------------------------------------------------
// Limits

TEST(ReadArchiveTest, StopsAtTheFileCount) {
  const TreeLimits limits{.max_bytes = 1024, .max_files = 3};
  EXPECT_TRUE(ReadArchive(Tar({File("a"), Dir("d/"), Link("b", "a"), File("d/c")}), limits).ok());
  EXPECT_TRUE(
      Refused(ReadArchive(Tar({File("a"), File("b"), File("c"), File("d"), File("e")}), limits),
              Status::Code::kTooLarge, "d: more than 3 files in the tree"));
}

TEST(ReadArchiveTest, StopsAtTheByteCountSymlinkTargetsIncluded) {
  const TreeLimits limits{.max_bytes = 10, .max_files = 100};
  EXPECT_TRUE(ReadArchive(Tar({File("a", "12345"), File("b", "12345")}), limits).ok());
  EXPECT_TRUE(Refused(ReadArchive(Tar({File("a", "12345"), File("b", "123456")}), limits),
                      Status::Code::kTooLarge, "b: more than 10 bytes in the tree"));
  EXPECT_TRUE(Refused(ReadArchive(Tar({File("a", "12345678"), Link("b", "abc")}), limits),
                      Status::Code::kTooLarge, "b: more than 10 bytes in the tree"));
}

TEST(ReadArchiveTest, StopsACompressionBombAtTheLimit) {
  const std::string zeros(32 << 20, '\0');
  const TreeLimits limits{.max_bytes = 1 << 20, .max_files = 100};
  for (Format format : {Format::kTarGz, Format::kTarXz, Format::kZip}) {
    const std::string bomb = Make(format, {File("small", "ok"), File("zeros", zeros)});
    ASSERT_LT(bomb.size(), 1u << 20);
    EXPECT_TRUE(Refused(ReadArchive(bomb, limits), Status::Code::kTooLarge,
                        "zeros: more than 1048576 bytes in the tree"))
        << static_cast<int>(format);
  }
}

// ---------------------------------------------------------------------------
// Broken input

TEST(ReadArchiveTest, RefusesEmptyInputAndNonArchives) {
  EXPECT_TRUE(Invalid(ReadArchive("", kLimits), "empty upload: not an archive"));
  const Result<DeployTree> text = ReadArchive("hello, this is not an archive\n", kLimits);
  ASSERT_FALSE(text.ok());
  EXPECT_EQ(text.status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(text.status().message().rfind("not a tar or zip archive: ", 0), 0u)
      << text.status().message();
}

TEST(ReadArchiveTest, RefusesTruncatedArchives) {
  // Random bytes: the compressed archives are as long as the plain ones.
  std::mt19937 random(7);
  std::string data(100000, '\0');
  for (char& c : data) c = static_cast<char>(random() & 0xFF);
  for (Format format : {Format::kTar, Format::kTarGz, Format::kZip}) {
    const std::string whole = Make(format, {File("first", "1"), File("big", data)});
    ASSERT_TRUE(ReadArchive(whole, kLimits).ok());
    ASSERT_GT(whole.size(), data.size());
    for (size_t cut : {whole.size() / 2, whole.size() - 4000, size_t{4000}}) {
      const Result<DeployTree> tree = ReadArchive(whole.substr(0, cut), kLimits);
      EXPECT_FALSE(tree.ok()) << static_cast<int>(format) << " cut at " << cut;
      if (!tree.ok()) {
        EXPECT_EQ(tree.status().code(), Status::Code::kInvalidArgument);
        EXPECT_NE(tree.status().message().find("archive"), std::string::npos)
            << tree.status().message();
      }
    }
  }
}

// Whatever comes, an answer and no crash; what is accepted obeys the contract.
TEST(ReadArchiveTest, SurvivesRandomAndMutatedInput) {
  std::mt19937 random(13);
  const auto byte = [&] { return static_cast<char>(random() & 0xFF); };
  std::vector<std::string> seeds;
  for (Format format : {Format::kTar, Format::kTarGz, Format::kTarXz, Format::kZip}) {
    seeds.push_back(Make(format, {Dir("d/"), File("d/a", "alpha", 0755), Link("l", "d/a"),
                                  File("b", std::string(3000, 'b'))}));
  }
  const TreeLimits limits{.max_bytes = 1 << 20, .max_files = 1000};
  int accepted = 0;
  for (int round = 0; round < 3000; ++round) {
    std::string input;
    if (round % 4 == 0) {
      input.resize(random() % 2048);
      for (char& c : input) c = byte();
    } else {
      input = seeds[random() % seeds.size()];
      for (int flips = 1 + static_cast<int>(random() % 8); flips > 0; --flips) {
        input[random() % input.size()] = byte();
      }
      if (random() % 4 == 0) input.resize(random() % input.size());
    }
    const Result<DeployTree> tree = ReadArchive(input, limits);
    if (!tree.ok()) {
      EXPECT_FALSE(tree.status().message().empty());
      continue;
    }
    ++accepted;
    for (size_t i = 0; i < tree->entries.size(); ++i) {
      const std::string& path = tree->entries[i].path;
      EXPECT_FALSE(path.empty());
      EXPECT_NE(path[0], '/');
      EXPECT_EQ(path.find(".."), std::string::npos) << path;
      if (i > 0) {
        EXPECT_LT(tree->entries[i - 1].path, path);
      }
    }
  }
  EXPECT_GT(accepted, 0);  // the mutations also exercise the checks, not only the parsers
}

// ---------------------------------------------------------------------------
// Directories and the tar.gz written from them

class ReadDirectoryTest : public ::testing::Test {
 protected:
  // Writes `contents` at `name` under the directory, making parents.
  void Write(const std::string& name, const std::string& contents, mode_t mode = 0644) {
    const std::string path = dir_.path() + "/" + name;
    for (size_t slash = name.find('/'); slash != std::string::npos;
         slash = name.find('/', slash + 1)) {
      ::mkdir((dir_.path() + "/" + name.substr(0, slash)).c_str(), 0755);
    }
    std::ofstream(path, std::ios::binary) << contents;
    ASSERT_EQ(::chmod(path.c_str(), mode), 0) << path << ": " << std::strerror(errno);
  }
  void Symlink(const std::string& name, const std::string& target) {
    ASSERT_EQ(::symlink(target.c_str(), (dir_.path() + "/" + name).c_str()), 0)
        << name << ": " << std::strerror(errno);
  }
  std::string At(const std::string& name) const { return dir_.path() + "/" + name; }

  TempDir dir_{"deploy_tree"};
};

TEST_F(ReadDirectoryTest, RoundTripsThroughTarGz) {
  Write("index.html", "<html>");
  Write("bin/run", "#!/bin/sh\necho hi\n", 0755);
  Write("bin/owner-only", "o", 0700);
  Write("static/css/site.css", "body{}");
  Write("static/caf\xC3\xA9.txt", "utf8");
  Write("empty", "");
  Write("deep/" + std::string(120, 'n') + "/" + std::string(120, 'm'), "long name");
  Symlink("home.html", "index.html");
  Symlink("static/css/up", "../../bin");
  ASSERT_EQ(::mkdir(At("empty-dir").c_str(), 0755), 0);

  const Result<DeployTree> tree = ReadDirectory(dir_.path(), kLimits);
  ASSERT_TRUE(tree.ok()) << tree.status().ToString();
  EXPECT_EQ(Describe(*tree),
            "bin/owner-only exec o\n"
            "bin/run exec #!/bin/sh\necho hi\n\n"
            "deep/" +
                std::string(120, 'n') + "/" + std::string(120, 'm') +
                " file long name\n"
                "empty file \n"
                "home.html link index.html\n"
                "index.html file <html>\n"
                "static/caf\xC3\xA9.txt file utf8\n"
                "static/css/site.css file body{}\n"
                "static/css/up link ../../bin\n");

  const Result<std::string> archive = WriteTarGz(*tree);
  ASSERT_TRUE(archive.ok()) << archive.status().ToString();
  ASSERT_EQ(archive->substr(0, 2), "\x1F\x8B");
  const Result<DeployTree> again = ReadArchive(*archive, kLimits);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(Describe(*again), Describe(*tree));
  EXPECT_EQ(again->total_bytes, tree->total_bytes);
  // The same tree, the same bytes: no times or owners in the archive.
  EXPECT_EQ(*WriteTarGz(*again), *archive);
}

TEST_F(ReadDirectoryTest, WritesWhatGnuTarReads) {
  Write("a/b.txt", "bee");
  Write("run", "r", 0755);
  Symlink("c", "a/b.txt");
  const Result<DeployTree> tree = ReadDirectory(dir_.path(), kLimits);
  ASSERT_TRUE(tree.ok()) << tree.status().ToString();
  const Result<std::string> archive = WriteTarGz(*tree);
  ASSERT_TRUE(archive.ok());
  std::ofstream(At("out.tar.gz"), std::ios::binary) << *archive;
  ASSERT_EQ(::mkdir(At("x").c_str(), 0755), 0);
  ASSERT_EQ(std::system(("tar xzf '" + At("out.tar.gz") + "' -C '" + At("x") + "'").c_str()), 0);
  std::ifstream in(At("x/a/b.txt"));
  std::string text;
  in >> text;
  EXPECT_EQ(text, "bee");
  struct stat info;
  ASSERT_EQ(::stat(At("x/run").c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0111, 0111u);
  char target[64] = {};
  ASSERT_GT(::readlink(At("x/c").c_str(), target, sizeof(target) - 1), 0);
  EXPECT_STREQ(target, "a/b.txt");
}

TEST_F(ReadDirectoryTest, FollowsNoSymlinkAndRefusesOnesOutOfTheTree) {
  Write("app/index.html", "i");
  Symlink("app/etc", "/etc");
  EXPECT_TRUE(
      Invalid(ReadDirectory(At("app"), kLimits), "etc: symlink to an absolute path '/etc'"));
  ASSERT_EQ(::unlink(At("app/etc").c_str()), 0);
  Symlink("app/sibling", "../other");
  EXPECT_TRUE(Invalid(ReadDirectory(At("app"), kLimits),
                      "sibling: symlink '../other' points outside the tree"));
  ASSERT_EQ(::unlink(At("app/sibling").c_str()), 0);
  // A symlink to a directory inside is kept as a symlink, not walked.
  Write("app/sub/file", "f");
  Symlink("app/alias", "sub");
  const Result<DeployTree> tree = ReadDirectory(At("app"), kLimits);
  ASSERT_TRUE(tree.ok()) << tree.status().ToString();
  EXPECT_EQ(Describe(*tree), "alias link sub\nindex.html file i\nsub/file file f\n");
}

TEST_F(ReadDirectoryTest, RefusesFifosSocketsAndSpecialBits) {
  Write("a", "a");
  ASSERT_EQ(::mkfifo(At("pipe").c_str(), 0644), 0);
  EXPECT_TRUE(Invalid(ReadDirectory(dir_.path(), kLimits), "pipe: FIFO"));
  ASSERT_EQ(::unlink(At("pipe").c_str()), 0);

  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  struct sockaddr_un address = {};
  address.sun_family = AF_UNIX;
  const std::string socket_path = At("sock");
  ASSERT_LT(socket_path.size(), sizeof(address.sun_path));
  std::memcpy(address.sun_path, socket_path.c_str(), socket_path.size() + 1);
  ASSERT_EQ(::bind(fd, reinterpret_cast<struct sockaddr*>(&address), sizeof(address)), 0);
  ::close(fd);
  EXPECT_TRUE(Invalid(ReadDirectory(dir_.path(), kLimits), "sock: socket"));
  ASSERT_EQ(::unlink(At("sock").c_str()), 0);

  Write("bin/su", "s", 04755);
  EXPECT_TRUE(Invalid(ReadDirectory(dir_.path(), kLimits), "bin/su: setuid bit"));
  ASSERT_EQ(::chmod(At("bin/su").c_str(), 0755), 0);
  ASSERT_EQ(::chmod(At("bin").c_str(), 01777), 0);
  EXPECT_TRUE(Invalid(ReadDirectory(dir_.path(), kLimits), "bin: sticky bit"));
}

TEST_F(ReadDirectoryTest, RefusesNamesThatAreNotUtf8) {
  Write("ok", "");
  Write("latin1-caf\xE9", "");
  EXPECT_TRUE(
      Invalid(ReadDirectory(dir_.path(), kLimits), "latin1-caf\\xE9: name is not valid UTF-8"));
}

TEST_F(ReadDirectoryTest, StopsAtTheLimits) {
  Write("a", std::string(600, 'a'));
  Write("b", std::string(600, 'b'));
  EXPECT_TRUE(Refused(ReadDirectory(dir_.path(), {.max_bytes = 1000, .max_files = 10}),
                      Status::Code::kTooLarge, "b: more than 1000 bytes in the tree"));
  EXPECT_TRUE(Refused(ReadDirectory(dir_.path(), {.max_bytes = 10000, .max_files = 1}),
                      Status::Code::kTooLarge, "b: more than 1 files in the tree"));
}

TEST_F(ReadDirectoryTest, RefusesWhatIsNotADirectory) {
  Write("file", "f");
  const Result<DeployTree> file = ReadDirectory(At("file"), kLimits);
  ASSERT_FALSE(file.ok());
  EXPECT_EQ(file.status().message(), At("file") + ": not a directory");
  const Result<DeployTree> missing = ReadDirectory(At("missing"), kLimits);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), Status::Code::kIoError);
}

}  // namespace
}  // namespace cb::deploy
